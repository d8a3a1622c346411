import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './stack.js';

/** Identity comes only from what Envoy verified: an mTLS client certificate or a JWT. Headers are ignored. */
describe('agent identity through Envoy', () => {
  let stack: Stack;
  const readStaging = { namespace: 'staging', name: 'api-server' };

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses a call with only forged identity headers (401, nothing forwarded)', async () => {
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, {
      headers: { 'x-agent-id': 'ops-bot', 'x-toolgate-agent-id': 'ops-bot', 'x-forwarded-client-cert': 'URI=spiffe://toolgate.local/agent/ops-bot' },
    });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('unauthenticated');
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('attributes a JWT call to the token subject, never to a forged header', async () => {
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, {
      jwt: await stack.jwtFor('ops-bot'),
      headers: { 'x-toolgate-agent-id': 'admin', 'x-toolgate-decision-id': 'forged' },
    });
    expect(res.status).toBe(200);
    const [seen] = stack.upstream.requests();
    expect(seen?.headers['x-toolgate-agent-id']).toBe('ops-bot');
    expect(seen?.headers['x-toolgate-agent-auth']).toBe('jwt');
    expect(seen?.headers['x-toolgate-decision-id']).not.toBe('forged');
    // jwt_authn is configured not to forward the agent's token to the executor.
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it('does not let an unauthorized agent borrow an authorized identity by header', async () => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, {
      jwt: await stack.jwtFor('intruder'),
      headers: { 'x-toolgate-agent-id': 'ops-bot', 'x-agent-id': 'ops-bot' },
    });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('policy_denied');
  });

  it('rejects a JWT with a bad signature at Envoy (401)', async () => {
    const token = await stack.jwtFor('ops-bot');
    const [h, p, s] = token.split('.') as [string, string, string];
    const tampered = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { jwt: tampered });
    expect(res.status).toBe(401);
  });

  it('rejects an expired JWT at Envoy (401)', async () => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { jwt: await stack.jwtFor('ops-bot', { exp: Math.floor(Date.now() / 1000) - 600 }) });
    expect(res.status).toBe(401);
  });

  it('attributes an mTLS call to the SPIFFE ID of the client certificate', async () => {
    stack.upstream.clear();
    const cert = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { cert, headers: { 'x-toolgate-agent-id': 'someone-else' } });
    expect(res.status).toBe(200);
    const [seen] = stack.upstream.requests();
    expect(seen?.headers['x-toolgate-agent-id']).toBe('spiffe://toolgate.local/agent/ops-bot');
    expect(seen?.headers['x-toolgate-agent-auth']).toBe('mtls');
  });

  it('denies an mTLS agent whose SPIFFE ID is not authorized', async () => {
    const cert = await stack.certFor('spiffe://toolgate.local/agent/stranger', 'stranger');
    const res = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { cert });
    expect(res.status).toBe(403);
    expect(res.json.error.reasons.join(' ')).toMatch(/stranger/);
  });

  it('refuses a TLS client without a certificate at the handshake', async () => {
    const { request } = await import('node:https');
    const { readFileSync } = await import('node:fs');
    const outcome = await new Promise<string>((resolve) => {
      const req = request(
        { host: '127.0.0.1', port: stack.envoyMtlsPort, path: '/v1/tools/echo', method: 'POST', ca: readFileSync(stack.creds.caCertPath), servername: 'localhost', agent: false },
        (res) => resolve(`status ${res.statusCode}`),
      );
      req.on('error', (err) => resolve(`error ${err.message}`));
      req.end('{}');
    });
    expect(outcome).toMatch(/^error/);
  });
});
