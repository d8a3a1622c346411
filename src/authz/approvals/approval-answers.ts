import type { CheckResponse } from '../grpc/check-types.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { McpMessage } from '../input/mcp-message.js';
import { denyResponse } from '../response/check-response.js';
import { jsonRpcDenyResponse, type JsonRpcErrorData } from '../response/jsonrpc-deny.js';
import type { Approval } from './approval.js';

/** MCP 2025-11-25: "URLElicitationRequiredError", a tools/call that cannot proceed before the user visits a URL. */
export const URL_ELICITATION_REQUIRED = -32042;

export interface PendingAnswer {
  approval: Approval;
  url: string;
  decisionId: string;
  meta: JsonObject;
}

/** What the agent reads while its call waits: where to send a person, until when, and why. */
export function pendingBody(p: PendingAnswer): JsonObject {
  const a = p.approval;
  return {
    approval_id: a.id,
    status: 'pending',
    url: p.url,
    expires_at: new Date(a.expires_at).toISOString(),
    reasons: a.reasons,
    tool: a.tool,
    arguments_digest: a.arguments_digest,
    policy_revision: a.policy_revision,
    decision_id: p.decisionId,
    message: `this call needs a person's approval: ask an approver to open ${p.url}, then send exactly the same call again (it runs once)`,
  };
}

/** REST: 202 Accepted, the call held (not run); `Location` is the approval page. */
export function restPendingResponse(p: PendingAnswer): CheckResponse {
  return denyResponse({
    httpStatus: 202,
    body: JSON.stringify(pendingBody(p)),
    headers: { location: [p.url], 'retry-after': ['5'], 'content-type': ['application/json'] },
    decisionId: p.decisionId,
    dynamicMetadata: p.meta,
  });
}

/**
 * MCP: the URL-mode elicitation error of revision 2025-11-25 for the request's id (HTTP 200, so the client's
 * session stays up). The SDK turns it into UrlElicitationRequiredError with `elicitations`. Revision
 * 2026-07-28's `input_required` result is not spoken by the SDK in use: every revision gets this error.
 */
export function mcpPendingResponse(p: PendingAnswer & { message: McpMessage; tool: string }): CheckResponse {
  const id = p.message.kind === 'request' ? p.message.id : undefined;
  const text = `calling tool "${p.tool}" needs a person's approval: ${p.approval.reasons.join('; ')}`;
  const data: JsonRpcErrorData & { elicitations: JsonObject[]; approval: JsonObject } = {
    code: 'approval_required',
    reasons: p.approval.reasons,
    decision_id: p.decisionId,
    policy_revision: p.approval.policy_revision,
    tool: p.tool,
    elicitations: [{ mode: 'url', elicitationId: p.approval.id, url: p.url, message: `${text}. Open the page to approve or reject; the agent then calls the tool again with the same arguments.` }],
    approval: pendingBody(p),
  };
  return jsonRpcDenyResponse({ id, httpStatus: 403, rpcCode: URL_ELICITATION_REQUIRED, message: text, data, decisionId: p.decisionId, dynamicMetadata: p.meta });
}

/** The reasons an agent gets for a call a person rejected. */
export function rejectionReasons(a: Approval): string[] {
  const who = a.decided_by ? ` by ${a.decided_by}` : '';
  const until = new Date(a.expires_at).toISOString();
  return [`approval ${a.id} of this exact call was rejected${who}${a.note ? `: ${a.note}` : ''} (until ${until}; a changed call needs its own approval)`];
}
