import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { readAccessLog, startStack, type Stack } from './stack.js';

/**
 * Credentials only where they belong: a JWT is read from the Authorization header alone, must expire, and
 * never reaches a log; Envoy's own refusals answer in the documented JSON shape; a JWT cannot take the
 * name of a certificate identity.
 */
describe('identity hygiene through Envoy', () => {
  let stack: Stack;
  const echo = { message: 'hi' };
  const secrets: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', audit: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const expectShape = (json: unknown, code: string): void => {
    expect(json).toMatchObject({ error: { code, message: expect.any(String) } });
  };

  it('refuses a JWT in the query string (400 credential_in_url), even a valid one, and runs nothing', async () => {
    const token = await stack.jwtFor('ops-bot');
    secrets.push(token);
    stack.upstream.clear();
    const res = await stack.call(`/v1/tools/echo?access_token=${token}`, echo);
    expect(res.status).toBe(400);
    expectShape(res.json, 'credential_in_url');
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('requires exp: a token without one is refused by Envoy, in the JSON shape', async () => {
    const noExp = await signAgentJwt(stack.creds, { sub: 'ops-bot', exp: undefined });
    secrets.push(noExp);
    expect(JSON.parse(Buffer.from(noExp.split('.')[1] as string, 'base64url').toString())).not.toHaveProperty('exp');
    const res = await stack.call('/v1/tools/echo', echo, { jwt: noExp });
    expect(res.status).toBe(401);
    expectShape(res.json, 'unauthenticated');
  });

  it('answers Envoy\'s own refusals in the JSON shape: expired (401), another audience (403), HTTP/1.0 (426)', async () => {
    const expired = await stack.jwtFor('ops-bot', { exp: Math.floor(Date.now() / 1000) - 600 });
    const otherAudience = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: 'another-service' });
    secrets.push(expired, otherAudience);
    const e = await stack.call('/v1/tools/echo', echo, { jwt: expired });
    expect(e.status).toBe(401);
    expectShape(e.json, 'unauthenticated');
    expect(e.json.error.message).toMatch(/expired/i);
    const a = await stack.call('/v1/tools/echo', echo, { jwt: otherAudience });
    expect(a.status).toBe(403);
    expectShape(a.json, 'forbidden');

    const raw = await new Promise<string>((resolve, reject) => {
      // Written without a half-close: Envoy answers HTTP/1.0 and closes the connection itself.
      const s = connect(stack.envoyHttpPort, '127.0.0.1', () => s.write('POST /v1/tools/echo HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'));
      let text = '';
      s.setTimeout(10_000, () => s.destroy());
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.[01] 426/u);
    expectShape(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)), 'upgrade_required');
  });

  it('keeps mTLS and JWT agent ids apart: a JWT naming a SPIFFE ID is refused', async () => {
    const impostor = await stack.jwtFor('spiffe://toolgate.local/agent/ops-bot');
    secrets.push(impostor);
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt: impostor });
    expect(res.status).toBe(401);
    expectShape(res.json, 'unauthenticated');
    expect(res.json.error.message).toMatch(/must not contain ':'/);
    // The real certificate holder still gets in.
    const cert = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
    expect((await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { cert })).status).toBe(200);
  });

  it('writes no token to any log: access log, authz, Envoy and audit', async () => {
    // Access log lines reach the file within half a second (--file-flush-interval-msec 500).
    await new Promise((r) => setTimeout(r, 1500));
    const lines = await readAccessLog(stack);
    expect(lines.some((l) => l.path === '/v1/tools/echo' && Number(l.status) === 400)).toBe(true);
    const files = [stack.accessLogPath, ...(stack.authzAuditPath ? [stack.authzAuditPath] : [])];
    for (const f of await readdir(join(stack.dir, 'logs'))) files.push(join(stack.dir, 'logs', f));
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const secret of secrets) {
        // Any of a JWT's three parts would be a leak; the signature is the part no one else knows.
        expect(text.includes(secret.split('.')[2] as string), `${file} holds a token`).toBe(false);
      }
    }
  });
});
