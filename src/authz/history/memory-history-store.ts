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
 * One agent's calls in flight, sorted by expiry (ties in arrival order) with a map from check id to its entry:
 * counting the live ones drops the expired from the front, an ended call is marked gone in place, and a full
 * set gives up the call closest to its expiry, so every check costs O(log n) amortized. (An agent's calls may
 * stay in flight until their expiry when no executor ends them, up to `maxEntriesPerSeries`: scanning them on
 * every check cost more than the check.)
 */
class InFlightCalls {
  private readonly byId = new Map<string, InFlightEntry>();
  private entries: InFlightEntry[] = [];
  private head = 0;
  /** Entries at or after `head` whose call has ended. */
  private gone = 0;

  add(checkId: string, until: number, max: number): void {
    this.remove(checkId);
    const entry: InFlightEntry = { id: checkId, until, gone: false };
    this.byId.set(checkId, entry);
    // Calls of one tool share a timeout: nearly always the latest expiry, appended.
    const last = this.entries[this.entries.length - 1];
    if (!last || last.until <= until) this.entries.push(entry);
    else this.entries.splice(firstEntryAfter(this.entries, until, this.head), 0, entry);
    // Over the cap, the call closest to its expiry goes (as the Redis store's ZREMRANGEBYRANK after its ZADD).
    if (this.byId.size > max) this.evictSoonest();
  }

  remove(checkId: string): void {
    const entry = this.byId.get(checkId);
    if (!entry) return;
    this.byId.delete(checkId);
    entry.gone = true;
    this.gone++;
    this.compact();
  }

  /** Calls whose expiry is after `t`; the expired ones are forgotten. */
  live(t: number): number {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head] as InFlightEntry;
      if (!entry.gone && entry.until > t) break;
      this.drop(entry);
    }
    this.compact();
    return this.byId.size;
  }

  private evictSoonest(): void {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head] as InFlightEntry;
      this.drop(entry);
      if (!entry.gone) break;
    }
  }

  /** Moves `head` past its entry, forgetting the call if it had not ended. */
  private drop(entry: InFlightEntry): void {
    this.head++;
    if (entry.gone) this.gone--;
    else this.byId.delete(entry.id);
  }

  /** Rewrites the array once most of it is dropped or gone. */
  private compact(): void {
    const dead = this.head + this.gone;
    if (dead > 1024 && dead * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head).filter((e) => !e.gone);
      this.head = 0;
      this.gone = 0;
    }
  }
}

interface InFlightEntry {
  id: string;
  until: number;
  gone: boolean;
}

/** Index of the first entry expiring later than `until`, from `lo` (entries ascend by expiry). */
function firstEntryAfter(xs: InFlightEntry[], until: number, lo: number): number {
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as InFlightEntry).until <= until) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function counts(s: Series, t: number, w: HistoryWindows): WindowCounts {
  return { '1m': s.ts.length - firstAfter(s, t - w.shortMs), '1h': s.ts.length - s.head };
}

/** Index of the first live timestamp later than `horizon` (binary search: the series is ascending). */
function firstAfter(s: Series, horizon: number): number {
  return firstAfterIn(s.ts, horizon, s.head);
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
