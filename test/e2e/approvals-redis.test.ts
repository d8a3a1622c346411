import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisApprovalStore } from '../../src/authz/approvals/redis-approval-store.js';
import type { Approval, ApprovalBinding } from '../../src/authz/approvals/approval.js';
import { createLogger } from '../../src/shared/logger.js';
import { closeStore, connectStore, type RedisConnection } from '../../src/shared/store/redis-connection.js';
import { resolveStoreConfig } from '../../src/shared/store/store-config.js';
import { startCollector, type Collector } from '../support/otel-collector.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startStack, type Response, type Stack } from './stack.js';

/**
 * Approvals in the shared Redis (issue 18): consumed once across replicas (two stores on two connections,
 * as two authz replicas have), and surviving an authz restart end to end through Envoy.
 */
describe('approvals in Redis', () => {
  let redis: TestRedis;
  const connections: RedisConnection[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  }, 120_000);

  afterAll(async () => {
    for (const c of connections) await closeStore(c);
    await redis?.stop();
  });

  async function replica(keyPrefix = 't:'): Promise<RedisApprovalStore> {
    const c = (await connectStore(resolveStoreConfig({ redis_url: redis.url }), createLogger('test'))) as RedisConnection;
    connections.push(c);
    return new RedisApprovalStore(c, { keyPrefix, timeoutMs: 2000, describe: redis.url });
  }

  const binding: ApprovalBinding = { agent_id: 'ops-bot', tool: 'echo', arguments_digest: 'sha256:ab', policy_revision: 'r1' };
  const fresh = (id: string, now: number, ttlMs = 60_000): Approval => ({
    ...binding,
    id,
    status: 'pending',
    agent_auth: 'jwt',
    // Numbers Lua's cjson would round: the store must hand them back exactly.
    arguments: { message: 'x', big: 12345678901234567, pi: 3.141592653589793, empty: {}, list: [] },
    reasons: ['needs approval'],
    protocol: 'rest',
    requested_by_decision: 'd0',
    created_at: now,
    expires_at: now + ttlMs,
  });

  it('two replicas racing to use one approval: exactly one consumes it; the others are told to ask again', async () => {
    const [a, b] = [await replica(), await replica()];
    const now = Date.now();
    const first = await a.claim(binding, fresh('apr_first_000000000000000', now), 'd1', now);
    expect(first).toMatchObject({ outcome: 'pending', created: true });
    expect(first.approval.arguments).toEqual(fresh('x', now).arguments);
    // The other replica sees the same pending approval.
    expect(await b.claim(binding, fresh('apr_other_000000000000000', now), 'd2', now)).toMatchObject({ outcome: 'pending', created: false, approval: { id: 'apr_first_000000000000000' } });
    expect(await b.decide('apr_first_000000000000000', 'approved', 'alice', 'ok', now)).toMatchObject({ outcome: 'decided', approval: { status: 'approved', decided_by: 'alice' } });
    expect(await a.decide('apr_first_000000000000000', 'rejected', 'bob', undefined, now)).toMatchObject({ outcome: 'already_decided' });

    const racers = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).claim(binding, fresh(`apr_race_${String(i).padStart(16, '0')}`, now), `d-race-${i}`, now));
    const results = await Promise.all(racers);
    const consumed = results.filter((r) => r.outcome === 'consumed');
    expect(consumed).toHaveLength(1);
    expect(consumed[0]?.approval).toMatchObject({ id: 'apr_first_000000000000000', status: 'used' });
    expect(consumed[0]?.approval.arguments).toEqual(fresh('x', now).arguments);
    // The rest found it used: one of them created the next pending approval, the others joined it.
    const created = results.filter((r) => r.outcome === 'pending' && r.created);
    expect(created).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'pending' && !r.created)).toHaveLength(8);
    expect(await a.get('apr_first_000000000000000')).toMatchObject({ status: 'used', used_by_decision: consumed[0]?.approval.used_by_decision });
  });

  it('expired approvals cannot be decided nor used', async () => {
    const s = await replica('expiry:');
    const now = Date.now();
    await s.claim(binding, fresh('apr_short_000000000000000', now, 100), 'd1', now);
    expect(await s.decide('apr_short_000000000000000', 'approved', 'alice', undefined, now + 200)).toMatchObject({ outcome: 'expired' });
    expect(await s.claim(binding, fresh('apr_after_000000000000000', now + 200), 'd2', now + 200)).toMatchObject({ outcome: 'pending', created: true, approval: { id: 'apr_after_000000000000000' } });
  });

  describe('through Envoy, across an authz restart', () => {
    let stack: Stack;
    let collector: Collector;
    let jwt: string;
    const scaleToZero = (traceparent?: string): Promise<Response> =>
      stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 0 }, { jwt, ...(traceparent ? { headers: { traceparent } } : {}) });

    beforeAll(async () => {
      collector = await startCollector();
      stack = await startStack({
        engine: 'embedded',
        otlpEndpoint: collector.endpoint,
        approvals: {},
        editAuthzConfig: (c) => {
          c.store = { redis_url: redis.url, key_prefix: 'e2e:' };
        },
      });
      jwt = await stack.jwtFor('ops-bot');
    }, 180_000);

    afterAll(async () => {
      await stack?.stop();
      await collector?.stop();
    });

    it('a pending approval and its approval survive a restart; the retry runs once', async () => {
      const heldTrace = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01-00f067aa0ba902b7-01';
      const held = await scaleToZero(heldTrace);
      expect(held.status).toBe(202);
      await stack.restartAuthz();
      // The restarted server finds the same pending approval.
      expect((await scaleToZero()).json.approval_id).toBe(held.json.approval_id);
      const approve = await fetch(held.json.url, { method: 'POST', headers: { authorization: `Bearer ${await stack.approverJwtFor('alice')}`, 'content-type': 'application/json' }, body: '{"verdict":"approve"}' });
      expect(approve.status).toBe(200);
      await stack.restartAuthz();
      stack.upstream.clear();
      const ranTrace = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02-00f067aa0ba902b7-01';
      const ran = await scaleToZero(ranTrace);
      expect(ran.status).toBe(200);
      // The trace of each call names the approval: held (pending), then run on it (consumed).
      const check = (spans: { name: string; attributes: Record<string, unknown> }[]) => spans.find((x) => x.name === 'toolgate.authz.check');
      const heldSpans = await collector.waitForTrace(heldTrace.split('-')[1] as string, (spans) => check(spans) !== undefined);
      expect(check(heldSpans)?.attributes).toMatchObject({ 'toolgate.approval.id': held.json.approval_id, 'toolgate.approval.status': 'pending', 'toolgate.decision.code': 'approval_required' });
      const ranSpans = await collector.waitForTrace(ranTrace.split('-')[1] as string, (spans) => check(spans) !== undefined);
      expect(check(ranSpans)?.attributes).toMatchObject({ 'toolgate.approval.id': held.json.approval_id, 'toolgate.approval.status': 'consumed', 'toolgate.decision.allowed': true });
      expect(stack.upstream.requests().filter((r) => r.path === '/v1/tools/k8s_scale_deployment')).toHaveLength(1);
      const again = await scaleToZero();
      expect(again.status).toBe(202);
      expect(again.json.approval_id).not.toBe(held.json.approval_id);
    });

    it('the store down: a call that needs an approval is refused with 503 naming the store; others go on', async () => {
      await redis.kill();
      try {
        const res = await scaleToZero();
        expect(res.status).toBe(503);
        expect(res.json.error.code).toBe('approvals_unavailable');
        expect(res.json.error.reasons.join(' ')).toContain(`127.0.0.1:${redis.port}`);
        const other = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'api', replicas: 2 }, { jwt });
        expect(other.status).toBe(200);
      } finally {
        await redis.restart();
      }
    });
  });
});
