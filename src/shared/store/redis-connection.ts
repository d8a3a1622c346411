import { createClient, type RedisClientType } from '@redis/client';
import type { Logger } from '../logger.js';
import { errorMessage } from '../logger.js';
import { redactedRedisUrl, type StoreConfig } from './store-config.js';

export type RedisConnection = RedisClientType;

/**
 * One connection to the configured Redis, shared by everything in a process that uses the store (history,
 * approvals). It reconnects by itself (backoff capped at 1 s); while it is down, commands fail at once
 * (no offline queue: a check must not wait for a store that is not there) and the callers fail closed.
 * Returns undefined when no redis_url is configured: callers then use their in-process implementations.
 */
export async function connectStore(config: StoreConfig, log: Logger): Promise<RedisConnection | undefined> {
  if (!config.redis_url) return undefined;
  const where = redactedRedisUrl(config.redis_url);
  const client: RedisConnection = createClient({
    url: config.redis_url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: config.connect_timeout_ms,
      noDelay: true,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 5), 1000),
    },
  }) as RedisConnection;
  let down = false;
  client.on('error', (err: unknown) => {
    // Logged once per outage, not once per reconnect attempt.
    if (!down) log.error('store connection lost', { store: where, cause: errorMessage(err) });
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info('store connection restored', { store: where });
    down = false;
  });
  // A store that is down at start-up is not fatal: the client keeps trying in the background (connect()
  // settles only once connected); checks that need it fail closed meanwhile.
  const connecting = client.connect().then(
    () => true,
    (err: unknown) => {
      log.error('store connection failed', { store: where, cause: errorMessage(err) });
      return false;
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const connected = await Promise.race([connecting, new Promise<false>((r) => (timer = setTimeout(() => r(false), config.connect_timeout_ms)))]);
  clearTimeout(timer);
  if (!connected) log.error('store not reachable at start-up; retrying in the background', { store: where });
  return client;
}

/** Closes the connection (pending commands are answered first when it is up). */
export async function closeStore(client: RedisConnection | undefined): Promise<void> {
  if (!client) return;
  try {
    if (client.isOpen) await client.close();
  } catch {
    client.destroy();
  }
}
