import { attest, mcpArgumentsBytes } from '../../shared/decision-attestation.js';
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
  arguments: Record<string, unknown> | undefined;
  /** `mcpArgumentsBytes(arguments)` when already rendered (large calls: see input/input-json.ts). */
  argumentsBytes?: Uint8Array;
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
  let body: Uint8Array = allowed.requestBody;
  if (message.method === 'tools/call' && allowed.tool !== undefined) {
    out[TRUSTED_HEADERS.tool] = allowed.tool;
    body = allowed.argumentsBytes ?? mcpArgumentsBytes(allowed.arguments);
    if (allowed.obligations) out[TRUSTED_HEADERS.obligations] = allowed.obligations;
  } else if (message.method === 'tools/list') {
    const value = (allowed.visibleTools ?? []).join(',');
    out[TRUSTED_HEADERS.visibleTools] = value;
    body = Buffer.from(value, 'utf8');
  } else if (message.kind === 'stream' || message.kind === 'session_end') {
    body = new Uint8Array(0);
  }
  if (key) {
    out[TRUSTED_HEADERS.attestation] = attest(key, {
      ...decision,
      tool: message.method === 'tools/call' ? (allowed.tool ?? '') : '',
      scope: `mcp:${message.method}`,
      body,
      ...(message.method === 'tools/call' && allowed.obligations ? { obligations: allowed.obligations } : {}),
    });
  }
  return out;
}
