import { createHash } from 'node:crypto';
import type { RedisConnection } from '../../shared/store/redis-connection.js';
import { HistoryUnavailable, STANDARD_WINDOWS, type HistoryInput, type HistoryStore, type HistorySubject, type HistoryWindows, type Settlement } from './history-input.js';
import { seriesKeys } from './memory-history-store.js';
import { historyInFlightKey } from '../../shared/store/history-keys.js';

/**
 * Each check's counts in one round trip and one atomic step (a Lua script): across replicas, the N+1st call
 * sees exactly N before it. Series are sorted sets (score: the Redis server's clock in ms, so replicas'
 * clocks do not matter; member: the check id) trimmed to the long window and to `maxEntries`, every key
 * with a TTL of the long window: memory is bounded by the traffic of the last hour, capped per series.
 * Keys carry the agent in a hash tag ({agent}), so one check's keys live in one Redis Cluster slot.
 */
const OBSERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local short, long, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local function counts(k)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - long)
  out[#out + 1] = redis.call('ZCOUNT', k, '(' .. (now - short), '+inf')
  out[#out + 1] = redis.call('ZCARD', k)
end
for i = 1, 3 do
  local k = KEYS[i]
  counts(k)
  redis.call('ZADD', k, now, ARGV[1])
  redis.call('ZREMRANGEBYRANK', k, 0, -cap - 1)
  redis.call('PEXPIRE', k, long)
end
counts(KEYS[4])
counts(KEYS[5])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
out[#out + 1] = redis.call('ZCARD', KEYS[6])
local bucketMs = long / 60
local spent = 0
local b = redis.call('HGETALL', KEYS[7])
for i = 1, #b, 2 do
  local bucket = tonumber(b[i])
  if (bucket + 1) * bucketMs <= now - long then redis.call('HDEL', KEYS[7], b[i]) else spent = spent + tonumber(b[i + 1]) end
end
out[#out + 1] = tostring(spent)
return out
`;

const SETTLE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local allowed, cost, inflight, long, cap = ARGV[2] == '1', tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if not allowed then
  for i = 1, 2 do
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -cap - 1)
    redis.call('PEXPIRE', KEYS[i], long)
  end
  return 0
end
if inflight > 0 then
  redis.call('ZADD', KEYS[3], now + inflight, ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -cap - 1)
  if redis.call('PTTL', KEYS[3]) < inflight then redis.call('PEXPIRE', KEYS[3], inflight) end
end
if cost > 0 then
  local bucketMs = long / 60
  redis.call('HINCRBYFLOAT', KEYS[4], math.floor(now / bucketMs), cost)
  redis.call('PEXPIRE', KEYS[4], long + bucketMs)
end
return 1
`;

export interface RedisHistoryOptions {
  keyPrefix: string;
  windows?: HistoryWindows;
  /** Entries kept per series (counts saturate there; the short window stays exact below it). */
  maxEntries?: number;
  /** How the store is named in reasons and logs (the URL without its password). */
  describe: string;
}

export class RedisHistoryStore implements HistoryStore {
  readonly describe: string;
  private readonly windows: HistoryWindows;
  private readonly maxEntries: number;
  private readonly observeSha = sha1(OBSERVE);
  private readonly settleSha = sha1(SETTLE);

  constructor(
    private readonly client: RedisConnection,
    private readonly opts: RedisHistoryOptions,
  ) {
    this.describe = opts.describe;
    this.windows = opts.windows ?? STANDARD_WINDOWS;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  async observe(subject: HistorySubject, checkId: string, timeoutMs: number): Promise<HistoryInput> {
    const k = this.keys(subject);
    const reply = await withTimeout(
      this.script(OBSERVE, this.observeSha, [k.calls, k.toolCalls, k.same, k.denied, k.toolDenied, k.inFlight, k.budget], [checkId, String(this.windows.shortMs), String(this.windows.longMs), String(this.maxEntries)]),
      timeoutMs,
      this.describe,
    );
    if (!Array.isArray(reply) || reply.length !== 12) throw new HistoryUnavailable(`the history store ${this.describe} gave an unexpected answer`);
    const n = (i: number): number => Number(reply[i]);
    return {
      agent: { calls: { '1m': n(0), '1h': n(1) }, denied: { '1m': n(6), '1h': n(7) }, in_flight: n(10), budget: { spent: n(11), window: '1h' } },
      tool: { calls: { '1m': n(2), '1h': n(3) }, denied: { '1m': n(8), '1h': n(9) } },
      same_arguments: { '1m': n(4), '1h': n(5) },
    };
  }

  async settle(subject: HistorySubject, checkId: string, s: Settlement): Promise<void> {
    const k = this.keys(subject);
    await this.script(SETTLE, this.settleSha, [k.denied, k.toolDenied, k.inFlight, k.budget], [checkId, s.allowed ? '1' : '0', String(s.cost), String(Math.max(0, Math.round(s.inFlightMs))), String(this.windows.longMs), String(this.maxEntries)]);
  }

  async finish(agentId: string, checkId: string): Promise<void> {
    await this.client.zRem(this.inFlightKey(agentId), checkId);
  }

  async close(): Promise<void> {
    // The connection is shared (approvals use it too): its owner closes it.
  }

  private keys(s: HistorySubject): ReturnType<typeof seriesKeys> & { inFlight: string; budget: string } {
    const p = `${this.opts.keyPrefix}h:`;
    const k = seriesKeys(s);
    return {
      calls: p + k.calls,
      denied: p + k.denied,
      toolCalls: p + k.toolCalls,
      toolDenied: p + k.toolDenied,
      same: p + k.same,
      inFlight: this.inFlightKey(s.agentId),
      budget: `${p}{${s.agentId}}:budget`,
    };
  }

  private inFlightKey(agentId: string): string {
    return historyInFlightKey(this.opts.keyPrefix, agentId);
  }

  /** EVALSHA, and EVAL when the server does not know the script (first use, or a restarted Redis). */
  private async script(source: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalSha(sha, { keys, arguments: args });
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return this.client.eval(source, { keys, arguments: args });
    }
  }
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** The store's answer within `ms`, or HistoryUnavailable naming the store (down: at once; slow: at the bound). */
async function withTimeout<T>(p: Promise<T>, ms: number, store: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HistoryUnavailable(`the history store ${store} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } catch (err) {
    if (err instanceof HistoryUnavailable) throw err;
    throw new HistoryUnavailable(`the history store ${store} is unavailable: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
