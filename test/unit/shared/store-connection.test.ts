import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { closeStore, connectStore } from '../../../src/shared/store/redis-connection.js';
import { parseAuthzConfig } from '../../../src/authz/config.js';
import { resolveStoreConfig } from '../../../src/shared/store/store-config.js';
import { startRedis, type TestRedis } from '../../support/redis.js';

const quiet = createLogger('test', () => undefined);
let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
}, 60_000);
afterAll(async () => {
  await redis?.stop();
});

describe('store connection', () => {
  it('connects to the configured Redis and talks to it', async () => {
    const client = await connectStore(resolveStoreConfig({ redis_url: redis.url }), quiet);
    expect(client).toBeDefined();
    expect(await client!.ping()).toBe('PONG');
    await closeStore(client);
  });

  it('is absent (in-process store) without redis_url', async () => {
    expect(await connectStore(resolveStoreConfig(undefined), quiet)).toBeUndefined();
  });

  it('does not block start-up when the store is down, fails commands at once, and recovers', async () => {
    await redis.kill();
    const lines: string[] = [];
    const started = Date.now();
    const client = await connectStore(resolveStoreConfig({ redis_url: redis.url, connect_timeout_ms: 300 }), createLogger('test', (l) => lines.push(l)));
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(client!.ping()).rejects.toThrow();
    expect(lines.join('\n')).toContain('store not reachable');
    await redis.restart();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await client!.ping().then(() => true, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('the client did not reconnect');
      await new Promise((r) => setTimeout(r, 50));
    }
    await closeStore(client);
  }, 30_000);

  it('authz config: store section validated, defaults filled', () => {
    const base = 'catalog: c.yaml\npolicy: { engine: embedded, bundle: { file: b.tar.gz } }\n';
    expect(parseAuthzConfig(base, '/x/authz.yaml').store).toEqual({ key_prefix: 'toolgate:', connect_timeout_ms: 2000, command_timeout_ms: 200 });
    const c = parseAuthzConfig(`${base}store: { redis_url: "redis://127.0.0.1:6379/0", key_prefix: "tg:" }\n`, '/x/authz.yaml');
    expect(c.store?.redis_url).toBe('redis://127.0.0.1:6379/0');
    expect(c.store?.key_prefix).toBe('tg:');
    expect(() => parseAuthzConfig(`${base}store: { redis_url: "http://x" }\n`, '/x/authz.yaml')).toThrow(/store\/redis_url/);
    expect(() => parseAuthzConfig(`${base}store: { bogus: 1 }\n`, '/x/authz.yaml')).toThrow(/additional/);
    // The URL with its password from the environment (a Secret), checked at start-up.
    expect(resolveStoreConfig({ redis_url_env: 'R' } as never, { R: 'redis://:pw@redis:6379/0' }).redis_url).toBe('redis://:pw@redis:6379/0');
    expect(() => resolveStoreConfig({ redis_url_env: 'R' } as never, {})).toThrow(/R is not set/);
    expect(() => resolveStoreConfig({ redis_url_env: 'R' } as never, { R: 'http://x' })).toThrow(/not a redis/);
    expect(() => parseAuthzConfig(`${base}store: { redis_url_env: TOOLGATE_NO_SUCH_VAR_X }\n`, '/x/authz.yaml')).toThrow(/TOOLGATE_NO_SUCH_VAR_X is not set/);
  });
});
