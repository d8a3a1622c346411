import { ATTESTATION_CLOCK_SKEW_SECONDS } from '../../shared/decision-attestation.js';

/**
 * The decisions this executor process has accepted, each until its attestation expires: a decision is
 * accepted once, so a captured attested request sent again is refused. Nothing legitimate sends one twice:
 * Envoy retries a tool call only when it could not connect (the executor never saw it), and an agent's retry
 * passes the gateway again and gets a decision of its own.
 *
 * Across executor replicas the Kubernetes runner's Job, named after the call, is the lock (see
 * runners/kubernetes/job-identity.ts). Memory is bounded by the rate of calls times the attestation's life
 * (20 s): ids only, never bodies.
 */
export class UsedDecisions {
  private readonly until = new Map<string, number>();

  /** True the first time a decision id is claimed before its expiry (Unix seconds); false on a replay. */
  claim(decisionId: string, expiresAt: number, nowMs = Date.now()): boolean {
    this.sweep(nowMs);
    if (this.until.has(decisionId)) return false;
    this.until.set(decisionId, (expiresAt + ATTESTATION_CLOCK_SKEW_SECONDS) * 1000);
    return true;
  }

  get size(): number {
    return this.until.size;
  }

  /** Entries are inserted in arrival order and expire roughly in that order: stop at the first live one. */
  private sweep(nowMs: number): void {
    for (const [id, until] of this.until) {
      if (until >= nowMs) break;
      this.until.delete(id);
    }
  }
}
