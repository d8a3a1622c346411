import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_REVISION, startStack, type Stack } from './stack.js';

/**
 * The seed's example policy, through the real Envoy and the authz server, for both engines. Each case is
 * asserted on what the agent receives: the HTTP status, and for a refusal the reason in the JSON body.
 */
describe.each(['embedded', 'remote'] as const)('seed policy through Envoy (%s engine)', (engine) => {
  let stack: Stack;
  let token: string;

  beforeAll(async () => {
    stack = await startStack({ engine });
    token = await stack.jwtFor('ops-bot');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('allows a read in staging and forwards the call with the verified identity', async () => {
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api-server' }, { jwt: token });
    expect(res.status).toBe(200);
    const seen = stack.upstream.requests();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.path).toBe('/v1/tools/k8s_get_deployment');
    expect(seen[0]?.headers['x-toolgate-agent-id']).toBe('ops-bot');
    expect(seen[0]?.headers['x-toolgate-policy-revision']).toBe(SEED_REVISION);
    expect(seen[0]?.headers['x-toolgate-decision-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(seen[0]?.body ?? '{}')).toEqual({ namespace: 'staging', name: 'api-server' });
  });

  it("denies the seed's example request (a read in production) with the reason", async () => {
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'production', name: 'api-server' }, { jwt: token });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json.error.code).toBe('policy_denied');
    expect(res.json.error.tool).toBe('k8s_get_deployment');
    expect(res.json.error.policy_revision).toBe(SEED_REVISION);
    expect(res.json.error.reasons.join(' ')).toMatch(/staging/);
    expect(res.json.error.reasons.join(' ')).toMatch(/production/);
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('allows scaling to 10 replicas outside production', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'api-server', replicas: 10 }, { jwt: token });
    expect(res.status).toBe(200);
  });

  it('denies scaling to 11 replicas, saying why', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'api-server', replicas: 11 }, { jwt: token });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('policy_denied');
    expect(res.json.error.reasons.join(' ')).toMatch(/10/);
  });

  it('denies scaling in production', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'api-server', replicas: 2 }, { jwt: token });
    expect(res.status).toBe(403);
    expect(res.json.error.reasons.join(' ')).toMatch(/production/);
  });

  it('denies anything touching a secret, even a read in staging that allow would permit (deny wins)', async () => {
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/k8s_get_secret', { namespace: 'staging', name: 'db-password' }, { jwt: token });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('policy_denied');
    expect(res.json.error.reasons.join(' ')).toMatch(/secret/);
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('denies an agent that is not in authorized_agents', async () => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api-server' }, { jwt: await stack.jwtFor('intruder') });
    expect(res.status).toBe(403);
    expect(res.json.error.reasons.join(' ')).toMatch(/intruder/);
  });
});
