import { bindingKey, isLive, type Approval, type ApprovalBinding } from './approval.js';
import type { ApprovalStore, ClaimResult, DecideResult, Verdict } from './approval-store.js';

/**
 * Approvals in this process (one authz replica, `npm run gateway`): lost on restart. Each operation runs
 * without an await in between, so it is atomic for this process. Bounded: expired approvals are dropped
 * after `retainMs`, and at most `maxEntries` are kept (the oldest go first).
 */
export class MemoryApprovalStore implements ApprovalStore {
  readonly kind = 'memory';
  private readonly byId = new Map<string, Approval>();
  private readonly byBinding = new Map<string, string>();

  constructor(private readonly opts: { retainMs: number; maxEntries: number } = { retainMs: 3_600_000, maxEntries: 10_000 }) {}

  async claim(binding: ApprovalBinding, fresh: Approval, usedByDecision: string, now: number): Promise<ClaimResult> {
    this.sweep(now);
    const key = bindingKey(binding);
    const current = this.byBinding.get(key);
    const existing = current ? this.byId.get(current) : undefined;
    if (existing && isLive(existing, now)) {
      if (existing.status === 'approved') {
        const used: Approval = { ...existing, status: 'used', used_at: now, used_by_decision: usedByDecision };
        this.byId.set(used.id, used);
        return { outcome: 'consumed', approval: used };
      }
      if (existing.status === 'pending') return { outcome: 'pending', approval: existing, created: false };
      if (existing.status === 'rejected') return { outcome: 'rejected', approval: existing };
    }
    this.byId.set(fresh.id, fresh);
    this.byBinding.set(key, fresh.id);
    return { outcome: 'pending', approval: fresh, created: true };
  }

  async get(id: string): Promise<Approval | undefined> {
    return this.byId.get(id);
  }

  async decide(id: string, verdict: Verdict, approver: string, note: string | undefined, now: number): Promise<DecideResult> {
    const a = this.byId.get(id);
    if (!a) return { outcome: 'not_found' };
    if (a.status !== 'pending') return { outcome: 'already_decided', approval: a };
    if (!isLive(a, now)) return { outcome: 'expired', approval: a };
    const decided: Approval = { ...a, status: verdict, decided_by: approver, decided_at: now, ...(note ? { note } : {}) };
    this.byId.set(id, decided);
    return { outcome: 'decided', approval: decided };
  }

  async pending(now: number, limit: number): Promise<Approval[]> {
    return [...this.byId.values()].filter((a) => a.status === 'pending' && isLive(a, now)).sort((x, y) => y.created_at - x.created_at).slice(0, limit);
  }

  async close(): Promise<void> {}

  private sweep(now: number): void {
    for (const [id, a] of this.byId) {
      const over = this.byId.size > this.opts.maxEntries;
      if (!over && now < a.expires_at + this.opts.retainMs) continue;
      this.byId.delete(id);
      const key = bindingKey(a);
      if (this.byBinding.get(key) === id) this.byBinding.delete(key);
    }
  }
}
