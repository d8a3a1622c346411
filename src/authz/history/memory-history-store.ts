import { STANDARD_WINDOWS, type HistoryInput, type HistoryStore, type HistorySubject, type HistoryWindows, type Settlement, type WindowCounts } from './history-input.js';

export interface MemoryHistoryLimits {
  /** Timestamps kept per series (a series is one agent's calls, one tool's, one arguments digest's...). */
  maxEntriesPerSeries: number;
  /** Series kept in all; the least recently used go first. */
  maxSeries: number;
}

export const DEFAULT_MEMORY_LIMITS: MemoryHistoryLimits = { maxEntriesPerSeries: 10_000, maxSeries: 100_000 };

/**
 * Timestamps (ms, ascending) of one series: the live ones are `ts[head..]`. Dropping old ones moves `head`
 * (the array is compacted once half of it is dead), so trimming and counting stay O(log n) per check
 * instead of shifting or scanning up to `maxEntriesPerSeries` numbers. In-flight series hold expiries keyed
 * by check id instead.
 */
interface Series {
  ts: number[];
  head: number;
}

/**
 * `input.history` in this process's memory: one replica (`npm run gateway`, tests). The same semantics as the
 * Redis store (same windows, same counting of this check at observe time, same caps) with bounded memory: a
 * capped number of timestamps per series, a capped number of series (least recently used evicted), and
 * series dropped once their newest entry leaves the long window.
 */
export class MemoryHistoryStore implements HistoryStore {
  readonly describe = 'in-process';
  private readonly series = new Map<string, Series>();
  private readonly inFlight = new Map<string, InFlightCalls>();
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
      if (!calls) this.inFlight.set(subject.agentId, (calls = new InFlightCalls()));
      calls.add(checkId, t + s.inFlightMs, this.limits.maxEntriesPerSeries);
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
    this.inFlight.get(agentId)?.remove(checkId);
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
    else s = { ts: [], head: 0 };
    // Re-inserted: the Map's order is least recently used first.
    this.series.set(key, s);
    s.ts.push(t);
    if (s.ts.length - s.head > this.limits.maxEntriesPerSeries) dropBefore(s, s.ts.length - this.limits.maxEntriesPerSeries);
    this.evictIfFull(this.series);
  }

  /** Drops timestamps older than the long window; the series itself once empty. */
  private prune(key: string, t: number): Series | undefined {
    const s = this.series.get(key);
    if (!s) return undefined;
    dropBefore(s, firstAfter(s, t - this.windows.longMs));
    if (s.ts.length === s.head) {
      this.series.delete(key);
      return undefined;
    }
    return s;
  }

  private inFlightCount(agentId: string, t: number): number {
    const calls = this.inFlight.get(agentId);
    if (!calls) return 0;
    const n = calls.live(t);
    if (n === 0) this.inFlight.delete(agentId);
    return n;
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

/**
 * One agent's calls in flight: check id -> expiry, and the expiries sorted, so counting the live ones is a
 * binary search (an agent's calls may stay in flight until their expiry when no executor ends them, up to
 * `maxEntriesPerSeries`: scanning them all on every check cost more than the check).
 */
class InFlightCalls {
  private readonly byId = new Map<string, number>();
  private readonly expiries: number[] = [];
  /** The time of the last count: ids that expired by then may still be in `byId` (swept lazily). */
  private countedAt = -Infinity;

  add(checkId: string, until: number, max: number): void {
    this.remove(checkId);
    if (this.byId.size >= max) this.sweep();
    if (this.byId.size >= max) this.remove(this.byId.keys().next().value as string);
    this.byId.set(checkId, until);
    this.expiries.splice(firstAfterIn(this.expiries, until, 0), 0, until);
  }

  remove(checkId: string): void {
    const until = this.byId.get(checkId);
    if (until === undefined) return;
    this.byId.delete(checkId);
    const i = firstAtLeast(this.expiries, until);
    if (this.expiries[i] === until) this.expiries.splice(i, 1);
  }

  /** Calls whose expiry is after `t`; the expired ones are forgotten. */
  live(t: number): number {
    this.countedAt = t;
    const expired = firstAfterIn(this.expiries, t, 0);
    if (expired > 0) {
      this.expiries.splice(0, expired);
      for (const [id, until] of this.byId) {
        if (until > t) break; // ids are in insertion order: expiries mostly ascend, so most expired come first
        this.byId.delete(id);
      }
      // Expired ids left behind the first live one (a longer deadline inserted earlier) go in a full sweep,
      // only when they are as many as the live ones.
      if (this.byId.size > 2 * this.expiries.length) this.sweep();
    }
    return this.expiries.length;
  }

  private sweep(): void {
    for (const [id, until] of this.byId) if (until <= this.countedAt) this.byId.delete(id);
  }
}

function counts(s: Series, t: number, w: HistoryWindows): WindowCounts {
  return { '1m': s.ts.length - firstAfter(s, t - w.shortMs), '1h': s.ts.length - s.head };
}

/** Index of the first live timestamp later than `horizon` (binary search: the series is ascending). */
function firstAfter(s: Series, horizon: number): number {
  return firstAfterIn(s.ts, horizon, s.head);
}

/** Index of the first value not below `v` in ascending `xs`. */
function firstAtLeast(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first value later than `horizon` in ascending `xs`, from `lo`. */
function firstAfterIn(xs: number[], horizon: number, lo: number): number {
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) <= horizon) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Drops the timestamps before index `i`; compacts the array once most of it is dead. */
function dropBefore(s: Series, i: number): void {
  if (i <= s.head) return;
  s.head = i;
  if (s.head > 1024 && s.head * 2 > s.ts.length) {
    s.ts = s.ts.slice(s.head);
    s.head = 0;
  }
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
