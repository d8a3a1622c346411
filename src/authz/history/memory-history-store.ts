import { STANDARD_WINDOWS, type HistoryInput, type HistoryStore, type HistorySubject, type HistoryWindows, type Settlement, type WindowCounts } from './history-input.js';

export interface MemoryHistoryLimits {
  /** Timestamps kept per series (a series is one agent's calls, one tool's, one arguments digest's...). */
  maxEntriesPerSeries: number;
  /** Series kept in all; the least recently used go first. */
  maxSeries: number;
}

export const DEFAULT_MEMORY_LIMITS: MemoryHistoryLimits = { maxEntriesPerSeries: 10_000, maxSeries: 100_000 };

/** Timestamps (ms, ascending) of one series; in-flight series hold expiries keyed by check id instead. */
type Series = number[];

/**
 * `input.history` in this process's memory: one replica (`npm run gateway`, tests). The same semantics as the
 * Redis store (same windows, same counting of this check at observe time, same caps) with bounded memory: a
 * capped number of timestamps per series, a capped number of series (least recently used evicted), and
 * series dropped once their newest entry leaves the long window.
 */
export class MemoryHistoryStore implements HistoryStore {
  readonly describe = 'in-process';
  private readonly series = new Map<string, Series>();
  private readonly inFlight = new Map<string, Map<string, number>>();
  private readonly budgets = new Map<string, Map<number, number>>();

  constructor(
    private readonly windows: HistoryWindows = STANDARD_WINDOWS,
    private readonly limits: MemoryHistoryLimits = DEFAULT_MEMORY_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  async observe(subject: HistorySubject, _checkId?: string, _timeoutMs?: number): Promise<HistoryInput> {
    const t = this.now();
    const keys = seriesKeys(subject);
    return {
      agent: {
        calls: this.countThenAdd(keys.calls, t),
        denied: this.count(keys.denied, t),
        in_flight: this.inFlightCount(subject.agentId, t),
        budget: { spent: this.budgetSpent(subject.agentId, t), window: '1h' },
      },
      tool: { calls: this.countThenAdd(keys.toolCalls, t), denied: this.count(keys.toolDenied, t) },
      same_arguments: this.countThenAdd(keys.same, t),
    };
  }

  async settle(subject: HistorySubject, checkId: string, s: Settlement): Promise<void> {
    const t = this.now();
    const keys = seriesKeys(subject);
    if (!s.allowed) {
      this.add(keys.denied, t);
      this.add(keys.toolDenied, t);
      return;
    }
    if (s.inFlightMs > 0) {
      let calls = this.inFlight.get(subject.agentId);
      if (!calls) this.inFlight.set(subject.agentId, (calls = new Map()));
      if (calls.size >= this.limits.maxEntriesPerSeries) calls.delete(calls.keys().next().value as string);
      calls.set(checkId, t + s.inFlightMs);
      this.evictIfFull(this.inFlight);
    }
    if (s.cost > 0) {
      const bucketMs = this.windows.longMs / 60;
      const bucket = Math.floor(t / bucketMs);
      let spent = this.budgets.get(subject.agentId);
      if (!spent) this.budgets.set(subject.agentId, (spent = new Map()));
      spent.set(bucket, (spent.get(bucket) ?? 0) + s.cost);
      this.evictIfFull(this.budgets);
    }
  }

  async finish(agentId: string, checkId: string): Promise<void> {
    this.inFlight.get(agentId)?.delete(checkId);
  }

  async close(): Promise<void> {
    this.series.clear();
    this.inFlight.clear();
    this.budgets.clear();
  }

  /** Number of series held (tests: memory stays bounded). */
  size(): number {
    return this.series.size + this.inFlight.size + this.budgets.size;
  }

  private count(key: string, t: number): WindowCounts {
    const s = this.prune(key, t);
    return s ? counts(s, t, this.windows) : { '1m': 0, '1h': 0 };
  }

  private countThenAdd(key: string, t: number): WindowCounts {
    const before = this.count(key, t);
    this.add(key, t);
    return before;
  }

  private add(key: string, t: number): void {
    let s = this.series.get(key);
    if (s) this.series.delete(key);
    else s = [];
    // Re-inserted: the Map's order is least recently used first.
    this.series.set(key, s);
    s.push(t);
    if (s.length > this.limits.maxEntriesPerSeries) s.splice(0, s.length - this.limits.maxEntriesPerSeries);
    this.evictIfFull(this.series);
  }

  /** Drops timestamps older than the long window; the series itself once empty. */
  private prune(key: string, t: number): Series | undefined {
    const s = this.series.get(key);
    if (!s) return undefined;
    const horizon = t - this.windows.longMs;
    let i = 0;
    while (i < s.length && (s[i] as number) <= horizon) i++;
    if (i > 0) s.splice(0, i);
    if (s.length === 0) {
      this.series.delete(key);
      return undefined;
    }
    return s;
  }

  private inFlightCount(agentId: string, t: number): number {
    const calls = this.inFlight.get(agentId);
    if (!calls) return 0;
    for (const [id, until] of calls) if (until <= t) calls.delete(id);
    if (calls.size === 0) this.inFlight.delete(agentId);
    return calls.size;
  }

  private budgetSpent(agentId: string, t: number): number {
    const spent = this.budgets.get(agentId);
    if (!spent) return 0;
    const bucketMs = this.windows.longMs / 60;
    let sum = 0;
    for (const [bucket, cost] of spent) {
      if ((bucket + 1) * bucketMs <= t - this.windows.longMs) spent.delete(bucket);
      else sum += cost;
    }
    if (spent.size === 0) this.budgets.delete(agentId);
    return sum;
  }

  private evictIfFull<V>(map: Map<string, V>): void {
    while (map.size > this.limits.maxSeries) map.delete(map.keys().next().value as string);
  }
}

function counts(s: Series, t: number, w: HistoryWindows): WindowCounts {
  const shortHorizon = t - w.shortMs;
  // Ascending: count from the end while inside the short window.
  let short = 0;
  for (let i = s.length - 1; i >= 0 && (s[i] as number) > shortHorizon; i--) short++;
  return { '1m': short, '1h': s.length };
}

/** The series one check touches (the same names as the Redis keys, without the prefix). */
export function seriesKeys(s: HistorySubject): { calls: string; denied: string; toolCalls: string; toolDenied: string; same: string } {
  const a = `{${s.agentId}}`;
  return {
    calls: `${a}:calls`,
    denied: `${a}:denied`,
    toolCalls: `${a}:t:${s.tool}:calls`,
    toolDenied: `${a}:t:${s.tool}:denied`,
    same: `${a}:t:${s.tool}:args:${s.argumentsDigest}`,
  };
}
