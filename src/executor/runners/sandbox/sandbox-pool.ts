import type { StartedSandbox } from './sandbox-process.js';

/**
 * Single-use sandboxes started ahead of their calls, per tool: each is a complete sandbox (namespaces,
 * cgroup, clear environment, the runner with its tool loaded) waiting for one call on its stdin. A call
 * takes one (it is out of the pool from then on: it never serves a second call) and a replacement is started
 * in the background. What is known only at call time (call id, trace context, arguments, deadline,
 * cancellation) is given when it is taken; everything else was fixed at its start from the tool's settings,
 * so a sandbox is only handed to a call whose tool has exactly the settings it was started for.
 *
 * Bounded: at most `sizeFor(tool)` per tool and `maxTotal` in all, waiting or starting; at most
 * MAX_STARTING start at once (a start is one Node process loading on a core the calls also need). A sandbox
 * that exits before it is taken is replaced after a back-off that grows with each such exit in a row, so a
 * tool whose sandbox cannot start does not spin.
 */
export interface PoolTool {
  name: string;
  /** Everything the sandbox was started with: a sandbox is taken only for the same key. */
  settingsKey: string;
}

export interface SandboxPoolOptions<T extends PoolTool> {
  /** Sandboxes kept waiting for this tool (0: none). */
  sizeFor(tool: T): number;
  maxTotal: number;
  start(tool: T): Promise<StartedSandbox>;
  /** A pre-started sandbox exited before a call took it (what it wrote on stderr, for the operator). */
  onEarlyExit?(tool: T, stderr: string, retryInMs: number): void;
}

interface Waiting {
  sandbox: StartedSandbox;
  isReady: boolean;
}

interface ToolPool<T> {
  tool: T;
  waiting: Waiting[];
  /** Being started (cgroup, spawn): not yet a sandbox to take. */
  spawning: number;
  /** Early exits in a row (reset by a sandbox that became ready). */
  failures: number;
  retryAt: number;
  retryTimer?: NodeJS.Timeout;
}

/** Sandboxes starting (spawned, not yet ready) at once, over all tools. */
const MAX_STARTING = 2;
const REFILL_AFTER_TAKE_MS = 250;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 60_000;

export class SandboxPool<T extends PoolTool> {
  private readonly pools = new Map<string, ToolPool<T>>();
  /** Tools waiting for a start slot, in order. */
  private readonly queue: string[] = [];
  private starting = 0;
  private closed = false;
  /** Starts under way (cgroup, spawn, until ready), for close() to wait for. */
  private readonly startsUnderWay = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: SandboxPoolOptions<T>) {}

  /** Starts filling the pools of these tools (the executor's catalog, at start). */
  warm(tools: T[]): void {
    for (const tool of tools) if (this.opts.sizeFor(tool) > 0) this.fill(tool);
  }

  /**
   * A sandbox for this tool, started ahead, or undefined (none waiting, or the pool is off for it). A ready
   * one first, else the one that has been starting longest (still sooner than a new one). The replacement
   * starts when the caller says the call is done (`refill`), or REFILL_AFTER_TAKE_MS after the take for a
   * long call: not at once, so it does not compete for the CPU with the call that just took its sandbox.
   */
  take(tool: T): StartedSandbox | undefined {
    if (this.closed || (this.opts.sizeFor(tool) === 0 && !this.pools.has(tool.name))) return undefined;
    const pool = this.poolFor(tool);
    if (pool.tool.settingsKey !== tool.settingsKey) this.replaceSettings(pool, tool);
    pool.waiting = pool.waiting.filter((w) => !w.sandbox.hasEnded);
    const i = Math.max(0, pool.waiting.findIndex((w) => w.isReady));
    const [taken] = pool.waiting.splice(i, 1);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.fill(tool);
    }, REFILL_AFTER_TAKE_MS);
    this.timers.add(timer);
    return taken?.sandbox;
  }

  /** Tops up this tool's pool (a call that took one is done). */
  refill(tool: T): void {
    this.fill(tool);
  }

  /** Sandboxes waiting for a call (ready or starting) per tool, and how many of them are ready. */
  stats(): Record<string, { waiting: number; ready: number }> {
    const out: Record<string, { waiting: number; ready: number }> = {};
    for (const [name, p] of this.pools) if (this.opts.sizeFor(p.tool) > 0 || p.waiting.length > 0) out[name] = { waiting: p.waiting.length, ready: p.waiting.filter((w) => w.isReady).length };
    return out;
  }

  /** Stops refilling and kills every sandbox still waiting; resolves once they are all gone, cgroups included. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    const gone: Promise<void>[] = [];
    for (const pool of this.pools.values()) {
      clearTimeout(pool.retryTimer);
      for (const w of pool.waiting) {
        w.sandbox.kill();
        gone.push(w.sandbox.cleanedUp);
      }
      pool.waiting = [];
    }
    // Those starting right now are killed as they come up (see startOne): wait for them too.
    await Promise.all([...gone, ...this.startsUnderWay]);
  }

  private poolFor(tool: T): ToolPool<T> {
    let pool = this.pools.get(tool.name);
    if (!pool) {
      pool = { tool, waiting: [], spawning: 0, failures: 0, retryAt: 0 };
      this.pools.set(tool.name, pool);
    }
    return pool;
  }

  /** The tool's settings changed (a new catalog): what was started for the old ones is of no use. */
  private replaceSettings(pool: ToolPool<T>, tool: T): void {
    for (const w of pool.waiting) w.sandbox.kill();
    pool.waiting = [];
    pool.tool = tool;
    pool.failures = 0;
  }

  private total(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.waiting.length + p.spawning;
    return n;
  }

  private missing(pool: ToolPool<T>): number {
    const queued = this.queue.filter((n) => n === pool.tool.name).length;
    return this.opts.sizeFor(pool.tool) - pool.waiting.length - pool.spawning - queued;
  }

  private fill(tool: T): void {
    if (this.closed) return;
    const pool = this.poolFor(tool);
    if (pool.tool.settingsKey !== tool.settingsKey) this.replaceSettings(pool, tool);
    const wait = pool.retryAt - Date.now();
    if (wait > 0) {
      if (pool.retryTimer) return;
      pool.retryTimer = setTimeout(() => {
        pool.retryTimer = undefined;
        this.fill(pool.tool);
      }, wait);
      return;
    }
    for (let n = this.missing(pool); n > 0; n--) this.queue.push(tool.name);
    this.startQueued();
  }

  private startQueued(): void {
    while (!this.closed && this.starting < MAX_STARTING && this.queue.length > 0) {
      const pool = this.pools.get(this.queue.shift() as string) as ToolPool<T>;
      if (this.total() >= this.opts.maxTotal || this.missing(pool) <= 0) continue;
      this.starting++;
      pool.spawning++;
      const started = this.startOne(pool);
      this.startsUnderWay.add(started);
      void started.finally(() => this.startsUnderWay.delete(started));
    }
  }

  /** Resolves once the sandbox is ready (or gone); watching it while it waits goes on in the background. */
  private async startOne(pool: ToolPool<T>): Promise<void> {
    const tool = pool.tool;
    let sandbox: StartedSandbox | undefined;
    try {
      sandbox = await this.opts.start(tool);
    } catch (err) {
      this.failed(pool, err instanceof Error ? err.message : String(err));
    }
    pool.spawning--;
    if (!sandbox) {
      this.starting--;
      this.startQueued();
      return;
    }
    if (this.closed || pool.tool.settingsKey !== tool.settingsKey) {
      sandbox.kill();
      this.starting--;
      await sandbox.cleanedUp;
      return;
    }
    const entry: Waiting = { sandbox, isReady: false };
    pool.waiting.push(entry);
    const ready = await sandbox.ready;
    this.starting--;
    if (ready) {
      entry.isReady = true;
      pool.failures = 0;
    }
    this.startQueued();
    // Waiting (or already taken): if it exits while still in the pool, it was never used: replace it.
    void sandbox.exited.then(() => {
      const i = pool.waiting.indexOf(entry);
      if (i === -1) return;
      pool.waiting.splice(i, 1);
      if (!this.closed) this.failed(pool, sandbox.stderr);
    });
  }

  private failed(pool: ToolPool<T>, stderr: string): void {
    pool.failures++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (pool.failures - 1));
    pool.retryAt = Date.now() + delay;
    this.opts.onEarlyExit?.(pool.tool, stderr, delay);
    this.fill(pool.tool);
  }
}
