import { createHash } from 'node:crypto';
import type { RedisConnection } from '../../shared/store/redis-connection.js';
import { bindingKey, type Approval, type ApprovalBinding, type ApprovalStatus } from './approval.js';
import { ApprovalStoreUnavailable, type ApprovalStore, type ClaimResult, type DecideResult, type Verdict } from './approval-store.js';

/**
 * Approvals in the shared Redis (every authz replica sees the same ones; they survive an authz restart).
 * One hash per approval: `doc` (the request, JSON, never rewritten) and its state in plain fields that the
 * Lua scripts change atomically, so an approval is consumed once and decided once across replicas. Scripts
 * never decode `doc` (Lua's cjson would round numbers in the arguments). Keys expire `retainMs` after the
 * approval does. The scripts touch keys they derive from the prefix: one Redis (or a primary with
 * replicas), not a Redis Cluster.
 *   <prefix>a:<id>          hash  doc, status, expires_at, decided_by, decided_at, note, used_at, used_by_decision
 *   <prefix>ab:<binding>    the current approval id of one exact call (agent, tool, arguments digest, revision)
 *   <prefix>apending        sorted set of pending ids by expiry (the approvers' list)
 */
const CLAIM = `
local prefix, now = ARGV[1], tonumber(ARGV[2])
local id = redis.call('GET', KEYS[1])
if id then
  local key = prefix .. 'a:' .. id
  local f = redis.call('HMGET', key, 'status', 'expires_at')
  if f[1] and now < tonumber(f[2]) then
    if f[1] == 'approved' then
      redis.call('HSET', key, 'status', 'used', 'used_at', ARGV[2], 'used_by_decision', ARGV[3])
      return {'consumed', redis.call('HGETALL', key)}
    elseif f[1] == 'pending' or f[1] == 'rejected' then
      return {f[1], redis.call('HGETALL', key)}
    end
  end
end
local key = prefix .. 'a:' .. ARGV[4]
redis.call('HSET', key, 'doc', ARGV[5], 'status', 'pending', 'expires_at', ARGV[6])
redis.call('PEXPIREAT', key, ARGV[7])
redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[4])
return {'created', redis.call('HGETALL', key)}
`;

const DECIDE = `
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not f[1] then return {'not_found', {}} end
if f[1] ~= 'pending' then return {'already_decided', redis.call('HGETALL', KEYS[1])} end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return {'expired', redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_by', ARGV[3], 'decided_at', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'note', ARGV[4]) end
redis.call('ZREM', KEYS[2], ARGV[5])
return {'decided', redis.call('HGETALL', KEYS[1])}
`;

export class RedisApprovalStore implements ApprovalStore {
  readonly kind = 'redis';
  private readonly claimSha = sha1(CLAIM);
  private readonly decideSha = sha1(DECIDE);

  constructor(
    private readonly client: RedisConnection,
    private readonly opts: { keyPrefix: string; timeoutMs: number; describe: string; retainMs?: number },
  ) {}

  async claim(binding: ApprovalBinding, fresh: Approval, usedByDecision: string, now: number): Promise<ClaimResult> {
    const p = this.opts.keyPrefix;
    const { id, status: _s, expires_at: _e, ...doc } = fresh;
    const keepUntil = fresh.expires_at + (this.opts.retainMs ?? 3_600_000);
    const reply = await this.script(CLAIM, this.claimSha, [`${p}ab:${bindingKey(binding)}`, `${p}apending`], [p, String(now), usedByDecision, id, JSON.stringify({ id, ...doc }), String(fresh.expires_at), String(keepUntil)]);
    const [outcome, fields] = this.reply(reply);
    const approval = fromHash(fields);
    if (outcome === 'consumed') return { outcome: 'consumed', approval };
    if (outcome === 'rejected') return { outcome: 'rejected', approval };
    if (outcome === 'pending') return { outcome: 'pending', approval, created: false };
    if (outcome === 'created') return { outcome: 'pending', approval, created: true };
    throw new ApprovalStoreUnavailable(`the approvals store ${this.opts.describe} gave an unexpected answer (${outcome})`);
  }

  async get(id: string): Promise<Approval | undefined> {
    const fields = await this.bounded(this.client.hGetAll(`${this.opts.keyPrefix}a:${id}`));
    return fields.doc ? fromHash(fields) : undefined;
  }

  async decide(id: string, verdict: Verdict, approver: string, note: string | undefined, now: number): Promise<DecideResult> {
    const p = this.opts.keyPrefix;
    const reply = await this.script(DECIDE, this.decideSha, [`${p}a:${id}`, `${p}apending`], [String(now), verdict, approver, note ?? '', id]);
    const [outcome, fields] = this.reply(reply);
    if (outcome === 'not_found') return { outcome: 'not_found' };
    const approval = fromHash(fields);
    if (outcome === 'decided' || outcome === 'expired' || outcome === 'already_decided') return { outcome, approval };
    throw new ApprovalStoreUnavailable(`the approvals store ${this.opts.describe} gave an unexpected answer (${outcome})`);
  }

  async pending(now: number, limit: number): Promise<Approval[]> {
    const ids = await this.bounded(this.client.zRangeByScore(`${this.opts.keyPrefix}apending`, now + 1, '+inf'));
    const all = await Promise.all(ids.slice(-limit).map((id) => this.get(id)));
    return all.filter((a): a is Approval => a !== undefined && a.status === 'pending').sort((x, y) => y.created_at - x.created_at);
  }

  async close(): Promise<void> {
    // The connection is shared (history uses it too): its owner closes it.
  }

  private reply(reply: unknown): [string, Record<string, string>] {
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) throw new ApprovalStoreUnavailable(`the approvals store ${this.opts.describe} gave an unexpected answer`);
    const flat = reply[1] as unknown[];
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = String(flat[i + 1]);
    return [reply[0], fields];
  }

  /** EVALSHA, and EVAL when the server does not know the script (first use, or a restarted Redis); bounded. */
  private async script(source: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
    return this.bounded(
      this.client.evalSha(sha, { keys, arguments: args }).catch((err: unknown) => {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        return this.client.eval(source, { keys, arguments: args });
      }),
    );
  }

  private async bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ApprovalStoreUnavailable(`the approvals store ${this.opts.describe} did not answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    });
    try {
      return await Promise.race([p, late]);
    } catch (err) {
      if (err instanceof ApprovalStoreUnavailable) throw err;
      throw new ApprovalStoreUnavailable(`the approvals store ${this.opts.describe} is unavailable: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function fromHash(f: Record<string, string>): Approval {
  const doc = JSON.parse(f.doc ?? '{}') as Omit<Approval, 'status' | 'expires_at'>;
  const a: Approval = { ...doc, status: (f.status ?? 'pending') as ApprovalStatus, expires_at: Number(f.expires_at) };
  if (f.decided_by) a.decided_by = f.decided_by;
  if (f.decided_at) a.decided_at = Number(f.decided_at);
  if (f.note) a.note = f.note;
  if (f.used_at) a.used_at = Number(f.used_at);
  if (f.used_by_decision) a.used_by_decision = f.used_by_decision;
  return a;
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
