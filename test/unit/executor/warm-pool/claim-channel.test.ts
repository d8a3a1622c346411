import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaimChannel, type Claim } from '../../../../src/executor/runners/kubernetes/warm-pool/claim-channel.js';

const claim: Claim = { call_id: '0123456789abcdef0123', arguments: { a: 1 }, result_url: 'http://x/result', result_token: 'rt' };

describe('the claim channel of warm pods', () => {
  const ready: string[] = [];
  const channel = new ClaimChannel((pod) => ready.push(pod));
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
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const ask = (pod: string, token: string): Promise<Response> => fetch(`${base}/internal/v1/warm/${pod}/claim`, { headers: { authorization: `Bearer ${token}` } });

  it('holds a waiting pod (then it is ready), hands it one claim, and refuses it any second one', async () => {
    channel.register('pod-a', 'token-a');
    expect(channel.ready('pod-a')).toBe(false);
    const waiting = ask('pod-a', 'token-a');
    for (let i = 0; i < 50 && !channel.ready('pod-a'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(channel.ready('pod-a')).toBe(true);
    expect(ready).toEqual(['pod-a']);
    expect(channel.offer('pod-a', claim)).toBe(true);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(claim);
    expect(channel.delivered('pod-a')).toBe(true);
    expect(channel.offer('pod-a', { ...claim, call_id: 'ffffffffffffffffffff' })).toBe(false);
    expect((await ask('pod-a', 'token-a')).status).toBe(410);
    expect(channel.ready('pod-a')).toBe(false);
  });

  it("refuses a wrong token, an unknown pod and a forgotten pod's token", async () => {
    channel.register('pod-b', 'token-b');
    expect((await ask('pod-b', 'token-a')).status).toBe(403);
    expect((await ask('pod-zzz', 'token-b')).status).toBe(403);
    channel.forget('pod-b');
    expect((await ask('pod-b', 'token-b')).status).toBe(403);
    expect(channel.offer('pod-b', claim)).toBe(false);
  });

  it('a claim offered before the pod asks is delivered when it asks', async () => {
    channel.register('pod-c', 'token-c');
    expect(channel.offer('pod-c', claim)).toBe(true);
    const res = await ask('pod-c', 'token-c');
    expect(await res.json()).toEqual(claim);
  });

  it('a claim the pod has not taken can be revoked: the pod never gets it, nor any other; a taken one cannot', async () => {
    channel.register('pod-d', 'token-d');
    const first = ask('pod-d', 'token-d');
    for (let i = 0; i < 50 && !channel.ready('pod-d'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(channel.waiting('pod-d')).toBe(true);
    expect(channel.offer('pod-d', claim)).toBe(true);
    expect((await first).status).toBe(200);
    expect(channel.revoke('pod-d')).toBe(false);

    channel.register('pod-e', 'token-e');
    expect(channel.waiting('pod-e')).toBe(false); // it has never asked: not known to be up
    expect(channel.offer('pod-e', claim)).toBe(true);
    expect(channel.revoke('pod-e')).toBe(true);
    expect((await ask('pod-e', 'token-e')).status).toBe(403);
    expect(channel.offer('pod-e', claim)).toBe(false);
  });
});
