import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../../src/shared/logger.js';
import { closeStore, connectStore, type RedisConnection } from '../../../../src/shared/store/redis-connection.js';
import { resolveStoreConfig } from '../../../../src/shared/store/store-config.js';
import { HistoryUnavailable, type HistoryStore, type HistorySubject, type HistoryWindows } from '../../../../src/authz/history/history-input.js';
import { MemoryHistoryStore } from '../../../../src/authz/history/memory-history-store.js';
import { RedisHistoryStore } from '../../../../src/authz/history/redis-history-store.js';
import { startRedis, type TestRedis } from '../../../support/redis.js';

const quiet = createLogger('test', () => undefined);
// Short windows so the tests can see counts leave them (the store does not care how long they are).
const windows: HistoryWindows = { shortMs: 400, longMs: 1200 };
let redis: TestRedis;
let client: RedisConnection;
beforeAll(async () => {
  redis = await startRedis();
  client = (await connectStore(resolveStoreConfig({ redis_url: redis.url }), quiet)) as RedisConnection;
}, 60_000);
afterAll(async () => {
  await closeStore(client);
  await redis?.stop();
});

const subject = (over: Partial<HistorySubject> = {}): HistorySubject => ({ agentId: `agent-${randomUUID()}`, tool: 'scale_deployment', argumentsDigest: 'sha256:aa', ...over });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const stores: [string, () => HistoryStore][] = [
  ['in-process', () => new MemoryHistoryStore(windows)],
  ['redis', () => new RedisHistoryStore(client, { keyPrefix: `t${randomUUID().slice(0, 8)}:`, windows, describe: redis.url })],
];

describe.each(stores)('history store (%s)', (_name, make) => {
  it('counts the checks before this one, per agent, tool and arguments', async () => {
    const store = make();
    const s = subject();
    const first = await store.observe(s, randomUUID(), 1000);
    expect(first).toEqual({
      agent: { calls: { '1m': 0, '1h': 0 }, denied: { '1m': 0, '1h': 0 }, in_flight: 0, budget: { spent: 0, window: '1h' } },
      tool: { calls: { '1m': 0, '1h': 0 }, denied: { '1m': 0, '1h': 0 } },
      same_arguments: { '1m': 0, '1h': 0 },
    });
    await store.observe(s, randomUUID(), 1000);
    await store.observe({ ...s, argumentsDigest: 'sha256:bb' }, randomUUID(), 1000);
    await store.observe({ ...s, tool: 'get_logs' }, randomUUID(), 1000);
    const h = await store.observe(s, randomUUID(), 1000);
    expect(h.agent.calls).toEqual({ '1m': 4, '1h': 4 });
    expect(h.tool.calls).toEqual({ '1m': 3, '1h': 3 });
    expect(h.same_arguments).toEqual({ '1m': 2, '1h': 2 });
    // Another agent starts from nothing.
    expect((await store.observe(subject(), randomUUID(), 1000)).agent.calls['1h']).toBe(0);
  });

  it('counts refusals, calls in flight and the budget from settlements', async () => {
    const store = make();
    const s = subject();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) await store.observe(s, id, 1000);
    await store.settle(s, ids[0] as string, { allowed: false, cost: 0, inFlightMs: 0 });
    await store.settle(s, ids[1] as string, { allowed: true, cost: 2.5, inFlightMs: 60_000 });
    await store.settle(s, ids[2] as string, { allowed: true, cost: 4, inFlightMs: 60_000 });
    let h = await store.observe(s, randomUUID(), 1000);
    expect(h.agent.denied).toEqual({ '1m': 1, '1h': 1 });
    expect(h.tool.denied).toEqual({ '1m': 1, '1h': 1 });
    expect(h.agent.in_flight).toBe(2);
    expect(h.agent.budget.spent).toBe(6.5);
    await store.finish(s.agentId, ids[1] as string);
    h = await store.observe(s, randomUUID(), 1000);
    expect(h.agent.in_flight).toBe(1);
  });

  it('an in-flight call the executor never reported ends at its deadline', async () => {
    const store = make();
    const s = subject();
    const id = randomUUID();
    await store.observe(s, id, 1000);
    await store.settle(s, id, { allowed: true, cost: 0, inFlightMs: 150 });
    expect((await store.observe(s, randomUUID(), 1000)).agent.in_flight).toBe(1);
    await sleep(250);
    expect((await store.observe(s, randomUUID(), 1000)).agent.in_flight).toBe(0);
  });

  it('slides: counts leave the short window, then the long one (and the budget with them)', async () => {
    const store = make();
    const s = subject();
    const id = randomUUID();
    await store.observe(s, id, 1000);
    await store.settle(s, id, { allowed: true, cost: 3, inFlightMs: 0 });
    await sleep(500);
    let h = await store.observe(s, randomUUID(), 1000);
    expect(h.same_arguments).toEqual({ '1m': 0, '1h': 1 });
    expect(h.agent.budget.spent).toBe(3);
    await sleep(1300);
    h = await store.observe(s, randomUUID(), 1000);
    expect(h.same_arguments).toEqual({ '1m': 0, '1h': 0 });
    expect(h.agent.calls).toEqual({ '1m': 0, '1h': 0 });
    expect(h.agent.budget.spent).toBe(0);
  });

  it('concurrent checks of the same call each see a distinct count (atomic)', async () => {
    const store = make();
    const s = subject();
    const seen = await Promise.all(Array.from({ length: 20 }, () => store.observe(s, randomUUID(), 5000)));
    expect(seen.map((h) => h.same_arguments['1m']).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

describe('history store bounds', () => {
  it('in-process: series are capped and the number of series is bounded', async () => {
    const store = new MemoryHistoryStore(windows, { maxEntriesPerSeries: 5, maxSeries: 50 });
    const s = subject();
    for (let i = 0; i < 10; i++) await store.observe(s, randomUUID(), 1000);
    expect((await store.observe(s, randomUUID(), 1000)).same_arguments['1m']).toBe(5);
    for (let i = 0; i < 200; i++) await store.observe(subject(), randomUUID(), 1000);
    expect(store.size()).toBeLessThanOrEqual(50);
  });

  it('in-process: counts stay exact through trimming and compaction of long series (against a naive count)', async () => {
    let now = 1_000_000;
    const cap = 300; // below what the long window holds (~400 entries here), so both trims happen
    const store = new MemoryHistoryStore(windows, { maxEntriesPerSeries: cap, maxSeries: 50 }, () => now);
    const s = subject();
    const seen: number[] = [];
    for (let i = 0; i < 9000; i++) {
      now += i % 7; // several checks per millisecond, then gaps
      const naive = seen.filter((t) => t > now - windows.longMs).slice(-cap);
      const got = (await store.observe(s, randomUUID(), 1000)).same_arguments;
      expect(got).toEqual({ '1m': naive.filter((t) => t > now - windows.shortMs).length, '1h': naive.length });
      seen.push(now);
    }
  });

  it('in-process: calls in flight are counted exactly as they start, end and expire (against a naive count)', async () => {
    let now = 5_000_000;
    const cap = 200;
    const store = new MemoryHistoryStore(windows, { maxEntriesPerSeries: cap, maxSeries: 50 }, () => now);
    const s = subject();
    const naive = new Map<string, number>();
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 3000; i++) {
      now += rand(5);
      for (const [id, until] of naive) if (until <= now) naive.delete(id);
      expect((await store.observe(s, `c${i}`, 1000)).agent.in_flight).toBe(naive.size);
      const lasting = [50, 400, 1500][rand(3)] as number; // deadlines differ by tool: expiries do not come in order
      await store.settle(s, `c${i}`, { allowed: true, cost: 0, inFlightMs: lasting });
      naive.set(`c${i}`, now + lasting);
      // Over the cap the call closest to its expiry goes (the first of equals), as Redis's ZREMRANGEBYRANK.
      if (naive.size > cap) naive.delete([...naive].reduce((a, b) => (b[1] < a[1] ? b : a))[0]);
      if (rand(3) === 0) {
        const ended = `c${i - rand(20)}`;
        await store.finish(s.agentId, ended);
        naive.delete(ended);
      }
    }
  });

  it('redis: every key has a TTL no longer than the long window, series are capped', async () => {
    const prefix = `b${randomUUID().slice(0, 8)}:`;
    const store = new RedisHistoryStore(client, { keyPrefix: prefix, windows, describe: redis.url, maxEntries: 5 });
    const s = subject();
    for (let i = 0; i < 10; i++) {
      const id = randomUUID();
      await store.observe(s, id, 1000);
      await store.settle(s, id, { allowed: i % 2 === 0, cost: 1, inFlightMs: 500 });
    }
    expect((await store.observe(s, randomUUID(), 1000)).same_arguments['1m']).toBe(5);
    const keys = await client.keys(`${prefix}*`);
    expect(keys.length).toBe(7);
    for (const k of keys) {
      const ttl = await client.pTTL(k);
      expect(ttl, k).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(windows.longMs + windows.longMs / 60);
      if ((await client.type(k)) === 'zset') expect(await client.zCard(k), k).toBeLessThanOrEqual(5);
    }
  });

  it('redis down: observe fails at once with HistoryUnavailable naming the store; recovers after a restart (scripts reloaded)', async () => {
    const c = (await connectStore(resolveStoreConfig({ redis_url: redis.url }), quiet)) as RedisConnection;
    const store = new RedisHistoryStore(c, { keyPrefix: 'd:', windows, describe: redis.url });
    await store.observe(subject(), randomUUID(), 1000);
    await redis.kill();
    try {
      const started = Date.now();
      const err = await store.observe(subject(), randomUUID(), 200).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HistoryUnavailable);
      expect((err as Error).message).toContain(redis.url);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await redis.restart();
    }
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await store.observe(subject(), randomUUID(), 1000).then(() => true, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('no recovery after restart');
      await sleep(100);
    }
    await closeStore(c);
    // The shared client reconnects too.
    await expect(client.ping()).resolves.toBe('PONG');
  }, 30_000);
});
