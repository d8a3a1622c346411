import type { Approval, ApprovalBinding } from './approval.js';

/** What the approver decided. */
export type Verdict = 'approved' | 'rejected';

export type DecideResult =
  | { outcome: 'decided'; approval: Approval }
  | { outcome: 'not_found' }
  | { outcome: 'expired'; approval: Approval }
  /** Already approved, rejected or used: a decision is made once. */
  | { outcome: 'already_decided'; approval: Approval };

/** What the check path found for a call that needs an approval. */
export type ClaimResult =
  /** An approved, unused, unexpired approval of this exact call: now marked used (by this caller only). */
  | { outcome: 'consumed'; approval: Approval }
  /** A pending approval of this exact call (created now, or the one already waiting). */
  | { outcome: 'pending'; approval: Approval; created: boolean }
  /** A person rejected this exact call (until the rejection expires). */
  | { outcome: 'rejected'; approval: Approval };

/**
 * Where approvals live. Every operation that changes state is atomic across every authz replica sharing the
 * store: an approval is consumed once, decided once.
 */
export interface ApprovalStore {
  readonly kind: string;
  /**
   * For a call needing approval: consume the approved approval of this binding, or report the pending or
   * rejected one, or store `fresh` as the new pending approval (when none is live or the last one was used).
   */
  claim(binding: ApprovalBinding, fresh: Approval, usedByDecision: string, now: number): Promise<ClaimResult>;
  get(id: string): Promise<Approval | undefined>;
  decide(id: string, verdict: Verdict, approver: string, note: string | undefined, now: number): Promise<DecideResult>;
  /** Pending approvals, newest first (for the approvers' list), at most `limit`. */
  pending(now: number, limit: number): Promise<Approval[]>;
  close(): Promise<void>;
}

/** Raised when the store cannot answer: the check path refuses the call (fail closed), naming the store. */
export class ApprovalStoreUnavailable extends Error {}
