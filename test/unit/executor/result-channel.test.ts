import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultEnvelope } from '../../../src/runner/envelope.js';
import { ResultChannel } from '../../../src/executor/runners/kubernetes/result-channel.js';

const CALL_ID = '0123456789abcdef0123';

describe('the result channel', () => {
  const channel = new ResultChannel();
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (!channel.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const post = (token: string, envelope: ResultEnvelope = { call_id: CALL_ID, status: 'ok', result: { n: 1 } }): Promise<Response> =>
    fetch(`${base}/internal/v1/calls/${CALL_ID}/result`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(envelope) });

  it("accepts one result, with the call's token only", async () => {
    const got: ResultEnvelope[] = [];
    const forget = channel.expect(CALL_ID, 'token-a', '{}', (e) => got.push(e));
    expect((await post('token-b')).status).toBe(403);
    expect((await post('token-a')).status).toBe(202);
    expect((await post('token-a')).status).toBe(403);
    expect(got).toEqual([{ call_id: CALL_ID, status: 'ok', result: { n: 1 } }]);
    forget();
  });

  it("an earlier run's forget leaves a retry's slot for the same call id alone", async () => {
    const got: string[] = [];
    const forgetOld = channel.expect(CALL_ID, 'old-token', '{}', () => got.push('old'));
    const forgetRetry = channel.expect(CALL_ID, 'retry-token', '{}', () => got.push('retry'));
    // The old run cleans up (after deleting its Job) while the retry already waits.
    forgetOld();
    expect((await post('retry-token')).status).toBe(202);
    expect(got).toEqual(['retry']);
    forgetRetry();
  });

  it('forgetting stops waiting', async () => {
    const forget = channel.expect(CALL_ID, 'token-c', '{}', () => undefined);
    forget();
    expect((await post('token-c')).status).toBe(403);
  });
});
