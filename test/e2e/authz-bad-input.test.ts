import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './stack.js';

/**
 * Fail closed, never fall over: every malformed request is refused with a specific code and reason in a JSON
 * body, nothing reaches the executor, and the next good call still works.
 */
describe('bad input through Envoy', () => {
  let stack: Stack;
  let jwt: string;
  const good = { namespace: 'staging', name: 'api-server' };

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', maxRequestBytes: 64 * 1024 });
    jwt = await stack.jwtFor('ops-bot');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function expectRefused(res: Awaited<ReturnType<Stack['call']>>, status: number, code: string, reason: RegExp): Promise<void> {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json.error.code).toBe(code);
    expect(res.json.error.message).toMatch(reason);
    expect(res.json.error.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(stack.upstream.requests()).toHaveLength(0);
    // The server is still serving.
    const after = await stack.call('/v1/tools/k8s_get_deployment', good, { jwt });
    expect(after.status).toBe(200);
    stack.upstream.clear();
  }

  it('malformed JSON → 400 invalid_body', async () => {
    stack.upstream.clear();
    await expectRefused(await stack.call('/v1/tools/k8s_get_deployment', undefined, { jwt, rawBody: '{"namespace": "staging", ' }), 400, 'invalid_body', /JSON/i);
  });

  it('duplicate JSON keys → 400 invalid_body (no parser-disagreement bypass)', async () => {
    await expectRefused(
      await stack.call('/v1/tools/k8s_get_deployment', undefined, { jwt, rawBody: '{"namespace":"staging","name":"a","namespace":"production"}' }),
      400,
      'invalid_body',
      /duplicate/i,
    );
  });

  it('a JSON body that is not an object → 400 invalid_body', async () => {
    await expectRefused(await stack.call('/v1/tools/k8s_get_deployment', undefined, { jwt, rawBody: '["staging"]' }), 400, 'invalid_body', /object/i);
  });

  it('non-UTF-8 body → 400 invalid_body', async () => {
    const bytes = Buffer.concat([Buffer.from('{"namespace":"st'), Buffer.from([0xc3, 0x28]), Buffer.from('ging","name":"x"}')]);
    await expectRefused(await stack.call('/v1/tools/k8s_get_deployment', undefined, { jwt, rawBody: bytes }), 400, 'invalid_body', /UTF-8/i);
  });

  it('oversized body (cut by Envoy) → 413 body_too_large', async () => {
    const big = { ...good, padding: 'x'.repeat(100 * 1024) };
    await expectRefused(await stack.call('/v1/tools/k8s_get_deployment', big, { jwt }), 413, 'body_too_large', /limit/i);
  });

  it('unknown tool → 404 unknown_tool', async () => {
    await expectRefused(await stack.call('/v1/tools/rm_rf_everything', {}, { jwt }), 404, 'unknown_tool', /rm_rf_everything/);
  });

  it('arguments failing the schema → 400 invalid_arguments with the failing field', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'x', replicas: 'ten' }, { jwt });
    expect(res.json.error.details.map((d: { path: string }) => d.path)).toEqual(['/replicas']);
    await expectRefused(res, 400, 'invalid_arguments', /replicas/);
  });

  it('a body with a great many schema errors is refused with the first one, in a small answer', async () => {
    const junk = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`k${i}`, i]));
    const res = await stack.call('/v1/tools/echo', { message: 'x', ...junk }, { jwt });
    expect(res.json.error.details).toHaveLength(1);
    expect(res.text.length).toBeLessThan(4096);
    await expectRefused(res, 400, 'invalid_arguments', /\/k0: is not an allowed argument/);
  });

  it('a body that fills the limit exactly and keeps coming → 413, nothing reaches the executor', async () => {
    const limit = 64 * 1024;
    const head = `{"namespace":"staging","name":"api-server"${' '.repeat(limit - 43)}}`;
    expect(Buffer.byteLength(head)).toBe(limit);
    const rest = ' '.repeat(6); // still valid JSON once complete
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(stack.envoyHttpPort, '127.0.0.1', () => {
        socket.write(`POST /v1/tools/k8s_get_deployment HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer ${jwt}\r\ncontent-type: application/json\r\ncontent-length: ${limit + rest.length}\r\nconnection: close\r\n\r\n${head}`);
        setTimeout(() => socket.write(rest), 300);
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      // Envoy answers and closes while the client is still sending: a reset after the answer is fine.
      socket.on('error', (err) => (text ? resolve(text) : reject(err)));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toMatch(/"code":"body_too_large"/);
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('missing identity → 401 unauthenticated, from Envoy at the headers (no decision made, no body read)', async () => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', good);
    expect([res.status, res.headers['content-type'], res.json.error.code]).toEqual([401, 'application/json', 'unauthenticated']);
    expect(res.json.error.message).toMatch(/identity/);
    expect(stack.upstream.requests()).toHaveLength(0);
  });

  it('wrong method on a tool endpoint → 405', async () => {
    await expectRefused(await stack.call('/v1/tools/k8s_get_deployment', undefined, { jwt, method: 'GET' }), 405, 'method_not_allowed', /POST/);
  });

  it('a path that is not a tool call is answered by Envoy without reaching anything', async () => {
    const res = await stack.call('/admin/secrets', {}, { jwt });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('not_found');
    expect(stack.upstream.requests()).toHaveLength(0);
  });
});

describe('authorization failures fail closed', () => {
  it('policy evaluation error → 500 policy_error, and authz server down → 503 from Envoy', async () => {
    const { freePort } = await import('../support/managed-process.js');
    // A remote engine pointing at a port where no OPA listens: every evaluation fails.
    const stack = await startStack({ engine: 'remote', remoteUrl: `http://127.0.0.1:${await freePort()}` }).catch((e: unknown) => {
      throw e;
    });
    try {
      const jwt = await stack.jwtFor('ops-bot');
      const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'a' }, { jwt });
      expect(res.status).toBe(500);
      expect(res.json.error.code).toBe('policy_error');
      expect(res.json.error.message).toMatch(/unreachable/);
      expect(stack.upstream.requests()).toHaveLength(0);

      await stack.stopAuthz();
      const down = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'a' }, { jwt });
      expect(down.status).toBe(503);
      expect(down.json.error.code).toBe('authorization_unavailable');
      expect(stack.upstream.requests()).toHaveLength(0);
    } finally {
      await stack.stop();
    }
  });
});
