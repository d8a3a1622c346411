import { attest, type AttestedDecision } from '../../shared/decision-attestation.js';
import { TRUSTED_HEADERS } from '../../shared/trusted-headers.js';
import type { McpMessage } from '../input/mcp-message.js';

/**
 * What an allowed MCP message to server `toolgate` carries to the executor (the contract in
 * docs/architecture.md, "MCP"): the decided method, the tool (tools/call) or the visible tools (tools/list),
 * and an attestation scoped to `mcp:<method>` over the bytes that matter for that method.
 */
export interface McpAllowed {
  message: McpMessage;
  tool: string | undefined;
  visibleTools: string[] | undefined;
  requestBody: Uint8Array;
  /** tools/call: the obligations header value (canonical JSON), when the policy obliged limits. */
  obligations?: string;
}

export function mcpTrustedHeaders(
  allowed: McpAllowed,
  decision: { decisionId: string; agentId: string; agentMethod: string; policyRevision: string },
  key: Buffer | undefined,
): Record<string, string> {
  const { message } = allowed;
  const out: Record<string, string> = { [TRUSTED_HEADERS.mcpMethod]: message.method };
  const isCall = message.method === 'tools/call' && allowed.tool !== undefined;
  if (isCall) {
    out[TRUSTED_HEADERS.tool] = allowed.tool as string;
    if (allowed.obligations) out[TRUSTED_HEADERS.obligations] = allowed.obligations;
  } else if (message.method === 'tools/list') {
    out[TRUSTED_HEADERS.visibleTools] = (allowed.visibleTools ?? []).join(',');
  }
  if (key) {
    const attested: AttestedDecision = {
      decisionId: decision.decisionId,
      agentId: decision.agentId,
      agentMethod: decision.agentMethod,
      tool: message.method === 'tools/call' ? (allowed.tool ?? '') : '',
      policyRevision: decision.policyRevision,
      scope: `mcp:${message.method}`,
      body: attestedBody(allowed, out),
    };
    if (message.method === 'tools/call' && allowed.obligations) attested.obligations = allowed.obligations;
    out[TRUSTED_HEADERS.attestation] = attest(key, attested);
  }
  return out;
}

/**
 * The bytes an attestation covers for this method: the request body, whose arguments the executor reads with
 * the same strict reader (a tools/call binds its id, tool and arguments at once, at the cost of one HMAC over
 * bytes already in hand); for tools/list the visible tools decided.
 */
function attestedBody(allowed: McpAllowed, headers: Record<string, string>): Uint8Array {
  if (allowed.message.method === 'tools/list') return Buffer.from(headers[TRUSTED_HEADERS.visibleTools] ?? '', 'utf8');
  if (allowed.message.kind === 'stream' || allowed.message.kind === 'session_end') return new Uint8Array(0);
  return allowed.requestBody;
}
