import type { CheckResponse } from '../grpc/check-types.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { MappedRequest } from '../input/build-input.js';
import type { ApprovalRequirement } from '../policy/approval-requirement.js';
import { denyResponse } from '../response/check-response.js';
import { jsonRpcDenyResponse } from '../response/jsonrpc-deny.js';
import { mcpPendingResponse, rejectionReasons, restPendingResponse } from './approval-answers.js';
import type { Approval } from './approval.js';
import type { ApprovalGate } from './approval-gate.js';
import { ApprovalStoreUnavailable } from './approval-store.js';

/** The approval part of a decision, for the decision log, the audit trail and the span. */
export interface ApprovalNote {
  id: string;
  /** consumed: this call runs on it; pending: held, waiting for a person; rejected: a person said no. */
  status: 'consumed' | 'pending' | 'rejected';
  created?: boolean;
}

export type ApprovalCheck =
  | { kind: 'run'; note: ApprovalNote; approval: Approval }
  | { kind: 'held'; note: ApprovalNote | undefined; response: CheckResponse; httpStatus: number; code: string; reasons: string[] };

/**
 * A call the policy allowed on condition of an approval: run it on an approved approval of exactly this call
 * (consumed once), or hold it (202 / MCP URL elicitation), or refuse it (rejected; approvals unavailable).
 * A store failure throws: the check fails closed as an error.
 */
export async function checkApproval(o: {
  gate: ApprovalGate | undefined;
  mapped: MappedRequest;
  requirement: ApprovalRequirement;
  revision: string;
  decisionId: string;
  meta: JsonObject;
  denyBody: (code: string, message: string, reasons: string[]) => { error: { code: string; message: string; reasons: string[]; decision_id: string } };
}): Promise<ApprovalCheck> {
  const { mapped, gate } = o;
  const tool = mapped.toolCall?.tool ?? '';
  const refuse = (code: string, message: string, reasons: string[], note: ApprovalNote | undefined, httpStatus = 403): ApprovalCheck => {
    const meta = { ...o.meta, allowed: false, code };
    const body = o.denyBody(code, message, reasons);
    if (mapped.mcp) {
      const id = mapped.mcp.kind === 'request' ? mapped.mcp.id : undefined;
      const response = jsonRpcDenyResponse({ id, httpStatus, rpcCode: httpStatus === 503 ? -32603 : -32003, message: `${message}: ${reasons.join('; ')}`, data: body.error, decisionId: o.decisionId, dynamicMetadata: meta });
      return { kind: 'held', note, response, httpStatus: id !== undefined ? 200 : httpStatus, code, reasons };
    }
    return { kind: 'held', note, response: denyResponse({ httpStatus, body, decisionId: o.decisionId, dynamicMetadata: meta }), httpStatus, code, reasons };
  };
  if (!gate || !mapped.agent || !mapped.toolCall) {
    const why = !gate ? 'approvals are not configured on this gateway (authz config `approvals`)' : 'only a tool call by an identified agent can be approved';
    return refuse('approval_unavailable', 'this call needs a person\'s approval, which cannot be given here', [...o.requirement.reasons, why], undefined);
  }
  let claim;
  try {
    claim = await gate.hold({ agent: mapped.agent, toolCall: mapped.toolCall, revision: o.revision, requirement: o.requirement, decisionId: o.decisionId });
  } catch (err) {
    // Fail closed: without the store no approval can be found or asked for.
    if (!(err instanceof ApprovalStoreUnavailable)) throw err;
    return refuse('approvals_unavailable', 'this call needs a person\'s approval, and the approvals store cannot be reached', [...o.requirement.reasons, err.message], undefined, 503);
  }
  const a = claim.approval;
  if (claim.outcome === 'consumed') return { kind: 'run', note: { id: a.id, status: 'consumed' }, approval: a };
  if (claim.outcome === 'rejected') {
    return refuse('approval_rejected', 'a person rejected this exact call', rejectionReasons(a), { id: a.id, status: 'rejected' });
  }
  const meta = { ...o.meta, allowed: false, code: 'approval_required', approval_id: a.id };
  const pending = { approval: a, url: gate.urlOf(a.id), decisionId: o.decisionId, meta };
  const note: ApprovalNote = { id: a.id, status: 'pending', created: claim.created };
  if (mapped.mcp) {
    const id = mapped.mcp.kind === 'request' ? mapped.mcp.id : undefined;
    return { kind: 'held', note, response: mcpPendingResponse({ ...pending, message: mapped.mcp, tool }), httpStatus: id !== undefined ? 200 : 403, code: 'approval_required', reasons: a.reasons };
  }
  return { kind: 'held', note, response: restPendingResponse(pending), httpStatus: 202, code: 'approval_required', reasons: a.reasons };
}
