import type { ToolOutcome } from '../runners/runner.js';

/**
 * Makes every call run at most once and bounds how many run at a time.
 *
 * A call is keyed by its identity (see callIdentity: the agent's Idempotency-Key for that tool, or the
 * gateway's decision id).
 * A retry of a finished call gets the recorded outcome; a retry of a running call waits for the same run.
 * The run is cancelled only when every waiter has gone (a disconnected client should not kill a call that a
 * retry is still waiting for). Cancelled runs are forgotten so that a later retry runs the call again.
 */
export interface LedgerOptions {
  maxInFlight: number;
  /** How long finished outcomes are kept for retries. */
  retainMs: number;
  /** Bound on retained outcomes (oldest evicted first). */
  maxRetained: number;
}

interface Entry {
  argumentsDigest: string;
  promise: Promise<ToolOutcome>;
  controller: AbortController;
  waiters: number;
  finishedAt: number | undefined;
}

export type Admission =
  | { kind: 'run' | 'join' | 'replay'; outcome: Promise<ToolOutcome>; release: () => void }
  | { kind: 'conflict' }
  | { kind: 'busy'; retryAfterSeconds: number };

export class CallLedger {
  private readonly entries = new Map<string, Entry>();
  private running = 0;

  constructor(private readonly opts: LedgerOptions) {}

  get inFlight(): number {
    return this.running;
  }

  /**
   * Admits a call. `start` is invoked only when the call must actually run, with a signal that fires when
   * all waiters have released without the run finishing.
   */
  admit(key: string, argumentsDigest: string, start: (signal: AbortSignal) => Promise<ToolOutcome>): Admission {
    this.evictExpired();
    const existing = this.entries.get(key);
    if (existing) {
      if (existing.argumentsDigest !== argumentsDigest) return { kind: 'conflict' };
      existing.waiters++;
      return { kind: existing.finishedAt === undefined ? 'join' : 'replay', outcome: existing.promise, release: this.releaser(key, existing) };
    }
    if (this.running >= this.opts.maxInFlight) return { kind: 'busy', retryAfterSeconds: 1 };

    const controller = new AbortController();
    this.running++;
    const entry: Entry = { argumentsDigest, controller, waiters: 1, finishedAt: undefined, promise: Promise.resolve(undefined as never) };
    entry.promise = start(controller.signal).then(
      (outcome) => this.finish(key, entry, outcome),
      (err: unknown) => this.finish(key, entry, { status: 'unavailable', error: err instanceof Error ? err.message : String(err) }),
    );
    this.entries.set(key, entry);
    return { kind: 'run', outcome: entry.promise, release: this.releaser(key, entry) };
  }

  private finish(key: string, entry: Entry, outcome: ToolOutcome): ToolOutcome {
    this.running--;
    entry.finishedAt = Date.now();
    // Only outcomes a retry should see again are retained; a cancelled or unavailable run may be retried.
    if (outcome.status === 'cancelled' || outcome.status === 'unavailable') {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    } else {
      this.evictOverflow();
    }
    return outcome;
  }

  private releaser(key: string, entry: Entry): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.waiters--;
      if (entry.waiters === 0 && entry.finishedAt === undefined) {
        entry.controller.abort(new Error('every client waiting for this call disconnected'));
        if (this.entries.get(key) === entry) this.entries.delete(key);
      }
    };
  }

  private evictExpired(): void {
    const cutoff = Date.now() - this.opts.retainMs;
    for (const [key, e] of this.entries) {
      if (e.finishedAt !== undefined && e.finishedAt < cutoff) this.entries.delete(key);
    }
  }

  private evictOverflow(): void {
    if (this.entries.size <= this.opts.maxRetained) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.opts.maxRetained) break;
      if (e.finishedAt !== undefined) this.entries.delete(key);
    }
  }
}
