import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startStack, type Stack } from './stack.js';

/**
 * The executor's fair limits and memory, through the real Envoy with the local sandbox runner: one agent at
 * its own limit of calls in flight leaves room for another, and what the executor keeps for retries stays
 * within its byte budget however many large calls go through.
 */
const MIB = 1024 * 1024;
const BUDGET = 32 * MIB;
const CALLS = Number(process.env.TOOLGATE_MEMORY_CALLS ?? 1000);
// Calls in flight at once: as many as the executor admits for one agent, so the sandboxes' start-up and
// the 1 MiB transfers overlap (the run is bound by the machine's cores, not by waiting).
const CONCURRENCY = 16;

interface MemoryFigures {
  heap: number;
  rss: number;
  external: number;
  retained: number;
}

async function readMemory(stack: Stack): Promise<MemoryFigures> {
  const text = await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text();
  const pick = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return {
    heap: pick('nodejs_heap_size_used_bytes'),
    rss: pick('process_resident_memory_bytes'),
    external: pick('nodejs_external_memory_bytes'),
    retained: pick('toolgate_executor_retained_result_bytes'),
  };
}

/**
 * The executor's memory; with `collect`, once it has settled after full garbage collections
 * (test/support/gc-on-signal.cjs): collections are repeated until two readings a second apart agree within
 * 1 MiB of Buffers and heap (at most 20 s), so what is measured is what the executor holds, not what the
 * collector and allocator have not released yet.
 */
async function executorMetrics(stack: Stack, collect = false): Promise<MemoryFigures> {
  if (!collect || !stack.executor) return readMemory(stack);
  const pid = stack.executor.pid;
  const collectOnce = async (): Promise<MemoryFigures> => {
    process.kill(pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 1000));
    return readMemory(stack);
  };
  const first = await collectOnce();
  let last = first;
  let rounds = 1;
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    const now = await collectOnce();
    rounds += 1;
    const settled = Math.abs(now.external - last.external) < MIB && Math.abs(now.heap - last.heap) < MIB;
    last = now;
    if (settled) break;
  }
  const mib = (n: number): string => (n / MIB).toFixed(1);
  process.stdout.write(`settled after ${rounds} rounds of collections: external ${mib(first.external)} -> ${mib(last.external)} MiB, heap ${mib(first.heap)} -> ${mib(last.heap)} MiB\n`);
  return last;
}

describe('executor limits: calls in flight per agent', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local', maxInFlight: 8, executorConfig: { max_in_flight_per_agent: 2 } });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('one agent saturating its limit does not stop another agent\'s calls', async () => {
    const busy = await stack.jwtFor('ops-bot');
    const other = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
    const running = [1, 2].map(() => stack.call('/v1/tools/sleep', { seconds: 3 }, { jwt: busy }));
    await new Promise((r) => setTimeout(r, 1000));
    const third = await stack.call('/v1/tools/sleep', { seconds: 0 }, { jwt: busy });
    expect(third.status).toBe(429);
    expect(third.json.error.code).toBe('agent_too_many_calls');
    expect(third.headers['retry-after']).toBe('1');
    const others = await Promise.all([1, 2].map(() => stack.call('/v1/tools/echo', { message: 'still served' }, { cert: other })));
    expect(others.map((r) => r.status)).toEqual([200, 200]);
    expect((await Promise.all(running)).map((r) => r.status)).toEqual([200, 200]);
    expect((await stack.call('/v1/tools/sleep', { seconds: 0 }, { jwt: busy })).status).toBe(200);
  });
});

describe(`executor limits: ${CALLS} one-MiB calls`, () => {
  let stack: Stack;

  beforeAll(async () => {
    // The default catalog with a longer timeout for echo: on a shared 2-core machine under load, a sandbox
    // moving 1 MiB each way has been seen to take over its usual 10 s. Memory, not speed, is measured here.
    const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: { name: string; execution: { timeout_seconds: number } }[] };
    for (const t of doc.tools) if (t.name === 'echo') t.execution.timeout_seconds = 120;
    const catalogPath = join(tmpdir(), `executor-limits-catalog-${process.pid}.yaml`);
    await writeFile(catalogPath, toYaml(doc));
    stack = await startStack({
      engine: 'embedded',
      executor: 'local',
      catalogPath,
      maxInFlight: CONCURRENCY,
      executorConfig: { max_in_flight_per_agent: CONCURRENCY, idempotency: { max_bytes: BUDGET } },
      // Measure live memory, not garbage the collector has not reached yet.
      // As the executor's image and the Helm chart set it: large buffers go back to the system when freed.
      executorEnv: { NODE_OPTIONS: `--expose-gc --require ${join(REPO_ROOT, 'test', 'support', 'gc-on-signal.cjs')}`, MALLOC_MMAP_THRESHOLD_: '131072' },
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('leave the executor\'s heap and RSS within the byte budget for retained results', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    // 1 MiB in, 1 MiB out (the result envelope must stay within the runner's 1 MiB).
    const message = 'm'.repeat(MIB - 512);
    // Warm up (JIT, first sandbox), then the baseline.
    expect((await stack.call('/v1/tools/echo', { message: 'warm' }, { jwt })).status).toBe(200);
    const before = await executorMetrics(stack, true);
    let peakRss = before.rss;
    const sampler = setInterval(() => {
      void executorMetrics(stack).then((m) => (peakRss = Math.max(peakRss, m.rss)), () => undefined);
    }, 1000);
    const started = Date.now();
    let next = 0;
    const statuses = new Map<number, number>();
    // Every call with its own Idempotency-Key: the worst case, each one's 1 MiB result may be kept.
    const worker = async (): Promise<void> => {
      {
        const i = next++;
        const res = await stack.call('/v1/tools/echo', { message }, { jwt, headers: { 'idempotency-key': `memory-${started}-${i}` } });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200 && res.json.result.length !== message.length) throw new Error('echo returned another message');
      }
    };
    // A fifth of the way, then the rest: what the executor holds must not grow with the number of calls.
    const fifth = Math.ceil(CALLS / 5);
    const run = (until: number): Promise<void[]> =>
      Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < until) await worker();
        }),
      );
    await run(fifth);
    const early = await executorMetrics(stack, true);
    await run(CALLS);
    clearInterval(sampler);
    const seconds = (Date.now() - started) / 1000;
    const after = await executorMetrics(stack, true);
    const mib = (n: number): string => (n / MIB).toFixed(1);
    process.stdout.write(
      `${CALLS} one-MiB calls (${CONCURRENCY} at a time) in ${seconds.toFixed(0)} s; executor heap used ${mib(before.heap)} -> ${mib(early.heap)} (after ${fifth}) -> ${mib(after.heap)} MiB, ` +
        `external ${mib(before.external)} -> ${mib(early.external)} -> ${mib(after.external)} MiB, RSS ${mib(before.rss)} -> ${mib(early.rss)} -> ${mib(after.rss)} MiB (peak ${mib(peakRss)}), ` +
        `retained results ${mib(after.retained)} MiB (budget ${mib(BUDGET)})\n`,
    );
    expect(Object.fromEntries(statuses)).toEqual({ 200: CALLS });
    expect(after.retained).toBeLessThanOrEqual(BUDGET);
    expect(after.retained).toBeGreaterThan(BUDGET - 2 * MIB);
    // Kept results are Buffers, outside the JavaScript heap: the live heap holds no result once answered.
    expect(after.heap - before.heap).toBeLessThan(8 * MIB);
    // Buffers: the budget, and a working set that does not grow with the number of calls.
    expect(after.external - before.external).toBeLessThan(BUDGET + 32 * MIB);
    expect(after.external - early.external).toBeLessThan(8 * MIB);
    // The process as a whole: the budget, plus what the calls in flight and the allocator keep; and four
    // fifths more calls leave it about where the first fifth did.
    expect(after.rss - before.rss).toBeLessThan(BUDGET + 96 * MIB);
    expect(after.rss - early.rss).toBeLessThan(48 * MIB);
    // A retry still gets its kept result (the newest are kept, oldest evicted first).
    const last = await stack.call('/v1/tools/echo', { message }, { jwt, headers: { 'idempotency-key': `memory-${started}-${CALLS - 1}` } });
    expect([last.status, last.headers['idempotent-replayed']]).toEqual([200, 'true']);
  }, 1_800_000);
});
