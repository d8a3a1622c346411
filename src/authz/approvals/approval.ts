import { createHash } from 'node:crypto';

/**
 * One request for a person's approval of one exact tool call. It is bound to the agent, the tool, the
 * arguments digest and the policy revision that asked for it: any change to those needs a new approval.
 *
 * pending -> approved -> used     (the agent's retry of exactly that call ran it, once)
 *         -> rejected
 * Every state ends at `expires_at` (a pending or approved approval past it is expired, never used).
 */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'used';

export interface ApprovalBinding {
  agent_id: string;
  tool: string;
  arguments_digest: string;
  policy_revision: string;
}

export interface Approval extends ApprovalBinding {
  id: string;
  status: ApprovalStatus;
  agent_auth: string;
  /** The arguments as the agent sent them (what the approver sees). */
  arguments: unknown;
  /** What the policy said (require_approval's reason, or its reasons). */
  reasons: string[];
  /** `rest` or `mcp`: how the agent asked (an approval serves a retry over either). */
  protocol: string;
  /** The decision that created it, for the audit trail and the trace. */
  requested_by_decision: string;
  created_at: number;
  expires_at: number;
  decided_by?: string;
  decided_at?: number;
  note?: string;
  used_at?: number;
  used_by_decision?: string;
}

/** The store key of a binding: one current approval per exact call. */
export function bindingKey(b: ApprovalBinding): string {
  const h = createHash('sha256');
  for (const part of [b.agent_id, b.tool, b.arguments_digest, b.policy_revision]) h.update(`${Buffer.byteLength(part)}:${part};`);
  return h.digest('hex');
}

/** Whether an approval still counts at `now` (expired approvals are kept for the page and the audit, never used). */
export function isLive(a: Approval, now: number): boolean {
  return now < a.expires_at;
}

/** An approval's id: random, URL-safe, unguessable (it is in a URL the agent shows to people). */
export const APPROVAL_ID_PATTERN = /^apr_[A-Za-z0-9_-]{22}$/;
