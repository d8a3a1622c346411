/**
 * Headers the authz server sets on an allowed request for the executor. They are trustworthy only because
 * Envoy removes any client-sent copy before ext_authz runs (header_mutation filter) and the authz server
 * overwrites them; the executor reads identity and decision from here, never from anything the agent sent.
 */
export const TRUSTED_HEADERS = {
  agentId: 'x-toolgate-agent-id',
  agentMethod: 'x-toolgate-agent-auth',
  decisionId: 'x-toolgate-decision-id',
  policyRevision: 'x-toolgate-policy-revision',
  tool: 'x-toolgate-tool',
  /** MCP: the JSON-RPC method that was decided (`tools/call`, `tools/list`, `initialize`, ...). */
  mcpMethod: 'x-toolgate-mcp-method',
  /** MCP `tools/list`: the catalog tools the policy lets this agent call, comma-separated (may be empty). */
  visibleTools: 'x-toolgate-visible-tools',
  /** Limits the policy obliged, canonical JSON (see obligations.ts); covered by the attestation. */
  obligations: 'x-toolgate-obligations',
  /** HMAC of the decision and the body (see decision-attestation.ts). */
  attestation: 'x-toolgate-attestation',
} as const;

export const TRUSTED_HEADER_NAMES: readonly string[] = Object.values(TRUSTED_HEADERS);
