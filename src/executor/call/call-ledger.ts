import type { ToolOutcome } from '../runners/runner.js';

/**
 * Makes every call run at most once and bounds how many run at a time, in all and per agent.
 *
 * A call is keyed by its identity (see callIdentity: the agent's Idempotency-Key for that tool, or the
 * gateway's decision id).
 * A retry of a finished call gets the recorded outcome; a retry of a running call waits for the same run.
 * The run is cancelled only when every waiter has gone (a disconnected client should not kill a call that a
 * retry is still waiting for). Cancelled runs are forgotten so that a later retry runs the call again.
 *
 * Finished outcomes are kept only for calls a retry can ask for again (`retain`: those with an
 * Idempotency-Key), for `retainMs`, within a count and a byte budget (oldest evicted first). They are kept
 * serialised, outside the JavaScript heap, so the budget is what they really cost.
 */
export interface LedgerOptions {
  maxInFlight: number;
  /** How long finished outcomes are kept for retries. */
  retainMs: number;
  /** Bound on retained outcomes (oldest evicted first). */
  maxRetained: number;
  /** Bound on the bytes of retained outcomes (their JSON); an outcome larger than this is not kept. */
  maxRetainedBytes?: number;
  /** Calls one agent may have running at once (beside maxInFlight), so one agent cannot take every slot. */
  maxInFlightPerAgent?: (agentId: string) => number;
}

export interface AdmitOptions {
  /** Whose call it is, for the per-agent limit. */
  agentId?: string;
  /** Keep the finished outcome for retries (default true). False for calls no retry can name again. */
  retain?: boolean;
}

interface Entry {
  argumentsDigest: string;
  /** While running: the run. Once retained, undefined (the outcome lives in `stored`). */
  promise: Promise<ToolOutcome> | undefined;
  stored: Buffer | undefined;
  controller: AbortController;
  waiters: number;
  finishedAt: number | undefined;
}

export type Admission =
  | { kind: 'run' | 'join' | 'replay'; outcome: Promise<ToolOutcome>; release: () => void }
  | { kind: 'conflict' }
  /** `limit`: which bound was reached, the executor's or the agent's own. */
  | { kind: 'busy'; retryAfterSeconds: number; limit: 'executor' | 'agent' };

export class CallLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly perAgent = new Map<string, number>();
  private running = 0;
  private bytes = 0;

  constructor(private readonly opts: LedgerOptions) {}

  get inFlight(): number {
    return this.running;
  }

  /** Bytes of the outcomes kept for retries. */
  get retainedBytes(): number {
    return this.bytes;
  }

  /** Calls running for this agent. */
  inFlightFor(agentId: string): number {
    return this.perAgent.get(agentId) ?? 0;
  }

  /**
   * Admits a call. `start` is invoked only when the call must actually run, with a signal that fires when
   * all waiters have released without the run finishing.
   */
  admit(key: string, argumentsDigest: string, start: (signal: AbortSignal) => Promise<ToolOutcome>, options: AdmitOptions = {}): Admission {
    this.evictExpired();
    const existing = this.entries.get(key);
    if (existing) {
      if (existing.argumentsDigest !== argumentsDigest) return { kind: 'conflict' };
      existing.waiters++;
      const outcome = existing.promise ?? Promise.resolve(JSON.parse((existing.stored as Buffer).toString('utf8')) as ToolOutcome);
      return { kind: existing.finishedAt === undefined ? 'join' : 'replay', outcome, release: this.releaser(key, existing) };
    }
    if (this.running >= this.opts.maxInFlight) return { kind: 'busy', retryAfterSeconds: 1, limit: 'executor' };
    const agent = options.agentId;
    if (agent !== undefined && this.opts.maxInFlightPerAgent && this.inFlightFor(agent) >= this.opts.maxInFlightPerAgent(agent)) {
      return { kind: 'busy', retryAfterSeconds: 1, limit: 'agent' };
    }

    const controller = new AbortController();
    this.running++;
    if (agent !== undefined) this.perAgent.set(agent, this.inFlightFor(agent) + 1);
    const retain = options.retain ?? true;
    const entry: Entry = { argumentsDigest, controller, waiters: 1, finishedAt: undefined, stored: undefined, promise: undefined };
    const done = (outcome: ToolOutcome): ToolOutcome => {
      if (agent !== undefined) {
        const n = this.inFlightFor(agent) - 1;
        if (n > 0) this.perAgent.set(agent, n);
        else this.perAgent.delete(agent);
      }
      return this.finish(key, entry, outcome, retain);
    };
    entry.promise = start(controller.signal).then(done, (err: unknown) => done({ status: 'unavailable', error: err instanceof Error ? err.message : String(err) }));
    this.entries.set(key, entry);
    return { kind: 'run', outcome: entry.promise, release: this.releaser(key, entry) };
  }

  private finish(key: string, entry: Entry, outcome: ToolOutcome, retain: boolean): ToolOutcome {
    this.running--;
    entry.finishedAt = Date.now();
    // Only outcomes a retry should see again are retained; a cancelled or unavailable run may be retried, and
    // a refusal belongs to the request refused (its decision), not to the call a later retry names.
    const retryable = outcome.status === 'cancelled' || outcome.status === 'unavailable' || outcome.status === 'refused';
    const stored = retain && !retryable ? Buffer.from(JSON.stringify(outcome), 'utf8') : undefined;
    if (!stored || stored.length > (this.opts.maxRetainedBytes ?? Infinity)) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      return outcome;
    }
    if (this.entries.get(key) !== entry) return outcome;
    entry.promise = undefined;
    entry.stored = stored;
    this.bytes += stored.length;
    this.evictOverflow();
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

  private forget(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.stored?.length ?? 0;
  }

  private evictExpired(): void {
    const cutoff = Date.now() - this.opts.retainMs;
    for (const [key, e] of this.entries) {
      if (e.finishedAt !== undefined && e.finishedAt < cutoff) this.forget(key, e);
    }
  }

  private evictOverflow(): void {
    const maxBytes = this.opts.maxRetainedBytes ?? Infinity;
    if (this.entries.size <= this.opts.maxRetained && this.bytes <= maxBytes) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.opts.maxRetained && this.bytes <= maxBytes) break;
      if (e.finishedAt !== undefined) this.forget(key, e);
    }
  }
}
