/**
 * Where toolgate keeps state shared by authz replicas (history counters, approvals): a Redis server teams
 * already run, or, when none is configured, memory of this one process (one replica, `npm run gateway`).
 *
 * authz config (YAML):
 *   store:
 *     redis_url: redis://127.0.0.1:6379/0      # absent => in-process store
 *     redis_url_env: TOOLGATE_REDIS_URL         # or: the URL (with its password) from this environment variable
 *     key_prefix: "toolgate:"                   # every key toolgate writes starts with it
 *     connect_timeout_ms: 2000                  # a connection attempt gives up after this
 *     command_timeout_ms: 200                   # upper bound of one store round trip on the check path
 */
export interface StoreConfig {
  redis_url?: string;
  key_prefix: string;
  connect_timeout_ms: number;
  command_timeout_ms: number;
}

export const DEFAULT_STORE_CONFIG: StoreConfig = { key_prefix: 'toolgate:', connect_timeout_ms: 2000, command_timeout_ms: 200 };

/** JSON schema of the `store` section (ajv), shared by every config that names a store. */
export const STORE_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    redis_url: { type: 'string', pattern: '^rediss?://' },
    redis_url_env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    key_prefix: { type: 'string', maxLength: 64 },
    connect_timeout_ms: { type: 'integer', minimum: 1, maximum: 60_000 },
    command_timeout_ms: { type: 'integer', minimum: 1, maximum: 10_000 },
  },
} as const;

export class StoreConfigError extends Error {}

/** The section as validated by STORE_CONFIG_SCHEMA, with defaults filled in (redis_url_env read here). */
export function resolveStoreConfig(raw: (Partial<StoreConfig> & { redis_url_env?: string }) | undefined, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  let url = raw?.redis_url;
  if (raw?.redis_url_env) {
    if (url) throw new StoreConfigError('store: give redis_url or redis_url_env, not both');
    url = env[raw.redis_url_env];
    // Fail at start-up, not on the first check: a store that was meant to be there is not silently in-process.
    if (!url || !/^rediss?:\/\//.test(url)) throw new StoreConfigError(`store.redis_url_env: environment variable ${raw.redis_url_env} ${url ? 'is not a redis:// or rediss:// URL' : 'is not set'}`);
  }
  return {
    ...(url ? { redis_url: url } : {}),
    key_prefix: raw?.key_prefix ?? DEFAULT_STORE_CONFIG.key_prefix,
    connect_timeout_ms: raw?.connect_timeout_ms ?? DEFAULT_STORE_CONFIG.connect_timeout_ms,
    command_timeout_ms: raw?.command_timeout_ms ?? DEFAULT_STORE_CONFIG.command_timeout_ms,
  };
}

/** The URL without its password, for logs. */
export function redactedRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable url)';
  }
}
