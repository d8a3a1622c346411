import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { startStack, type Stack } from './stack.js';

/**
 * Envoy's own bounds, through the real Envoy: a request without credentials is answered at its headers
 * (Envoy reads no more of its body than its 32 KiB connection buffer, and closes), slow senders are cut by
 * the header and request timeouts, and none of it holds up authenticated calls or Envoy's memory; bodies a
 * check needs are still buffered whole (up to MAX_REQUEST_BYTES).
 */
const TWO_MIB = 2 * 1024 * 1024;
const CONNECTION_CAP = 100;

interface RawExchange {
  /** The status line and headers, once the response starts. */
  head: Promise<string>;
  /** When the connection closed (ms since the request started). */
  closedAfterMs: Promise<number>;
  stop(): void;
}

/**
 * A raw HTTP/1.1 client that announces a 2 MiB body to /v1/tools/echo, sends the headers and the body's first
 * bytes, then whatever `send` writes: the exchange's head, when Envoy closed it, and a way to hang up.
 */
function upload(port: number, headers: Record<string, string>, send: (socket: Socket) => void): RawExchange {
  const started = Date.now();
  const socket: Socket = connect({ host: '127.0.0.1', port });
  let received = '';
  const head = new Promise<string>((resolve) => {
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) resolve(received.slice(0, end));
    });
    socket.on('close', () => resolve(received));
  });
  const closedAfterMs = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
  socket.on('error', () => undefined);
  socket.on('connect', () => {
    const lines = Object.entries({ host: 'toolgate', 'content-type': 'application/json', 'content-length': String(TWO_MIB), ...headers }).map(([k, v]) => `${k}: ${v}`);
    socket.write(`POST /v1/tools/echo HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n{"message":"`);
    send(socket);
  });
  return { head, closedAfterMs, stop: () => socket.destroy() };
}

/** A client that trickles its body: 1 KiB every `everyMs` ms. */
function slowUpload(port: number, headers: Record<string, string>, everyMs = 100): RawExchange {
  return upload(port, headers, (socket) => {
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write('x'.repeat(1024));
    }, everyMs);
    socket.on('close', () => clearInterval(timer));
  });
}

/** A client that sends 1.5 MiB of its body at once, then nothing more. */
function stalledUpload(port: number, headers: Record<string, string>): RawExchange {
  return upload(port, headers, (socket) => socket.write('x'.repeat(1.5 * 1024 * 1024)));
}

describe('Envoy limits', () => {
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', envoyLimits: { REQUEST_HEADERS_TIMEOUT: '2s', REQUEST_TIMEOUT: '4s', MAX_DOWNSTREAM_CONNECTIONS: CONNECTION_CAP } });
    jwt = await stack.jwtFor('ops-bot');
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  /** Bytes Envoy has allocated now (the admin /memory endpoint reads the allocator, unlike the stats gauge). */
  /** Bytes Envoy has read from agents' connections on its plain-HTTP listener. */
  const bytesRead = async (): Promise<number> => {
    const stats = await (await fetch(`http://127.0.0.1:${stack.envoyAdminPort}/stats?filter=^http\\.agents\\.downstream_cx_rx_bytes_total$`)).text();
    return [...stats.matchAll(/: (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const envoyMemory = async (): Promise<number> => Number(((await (await fetch(`http://127.0.0.1:${stack.envoyAdminPort}/memory`)).json()) as { allocated: string }).allocated);

  it('answers a request without credentials with the JSON 401 at its headers, before any of its body', async () => {
    const res = await stack.call('/v1/tools/echo', { message: 'who am I' });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('unauthenticated');
    const basic = await stack.call('/v1/tools/echo', { message: 'not a bearer token' }, { headers: { authorization: 'Basic b3BzOmJvdA==' } });
    expect(basic.status).toBe(401);
    // Announced 2 MiB, trickled: the answer comes long before the body could have arrived, and the connection closes.
    const upload = slowUpload(stack.envoyHttpPort, {});
    const started = Date.now();
    expect(await upload.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await upload.closedAfterMs).toBeLessThan(3000);
    // The authz server never saw it (the refusal is Envoy's own): no ext_authz check was made.
    const stats = await (await fetch(`http://127.0.0.1:${stack.envoyAdminPort}/stats?filter=ext_authz`)).text();
    expect(stats).not.toMatch(/http\.agents\.ext_authz\.toolgate\.(ok|denied): [1-9]/);
  });

  it('50 slow unauthenticated 2 MiB uploads do not raise Envoy\'s memory, even at the 401s, nor hold up authenticated calls', async () => {
    const before = await envoyMemory();
    const readBefore = await bytesRead();
    // Envoy's memory is sampled every 20 ms from the first upload until every client has its 401: the most
    // Envoy held while refusing them, not what is left once their connections are gone.
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await envoyMemory());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Each sends 1.5 MiB of its 2 MiB at once, then stalls: the most an upload can push at Envoy before its 401.
    const uploads = Array.from({ length: 50 }, (_, i) => stalledUpload(stack.envoyHttpPort, i % 2 === 0 ? {} : { authorization: 'Bearer not.a.jwt' }));
    const heads = await Promise.all(uploads.map((u) => u.head));
    const atTheRefusals = await envoyMemory();
    sampling = false;
    await sampler;
    peak = Math.max(peak, atTheRefusals);
    expect(heads.every((h) => /^HTTP\/1\.1 401 /.test(h))).toBe(true);
    // Refused at the headers, each connection is closed at once (the body is never read to its end).
    expect(heads.every((h) => /\r\nconnection: close(\r\n|$)/i.test(h))).toBe(true);
    const closedAfter = await Promise.all(uploads.map((u) => u.closedAfterMs));
    expect(Math.max(...closedAfter)).toBeLessThan(5000);
    // Envoy read at most about a connection buffer (32 KiB) of each, not the 75 MiB they pushed. With the old
    // 2 MiB connection buffer: 4.7 MB read, and 6.5 to 75 MB held at the moment of the 401s across runs.
    const read = (await bytesRead()) - readBefore;
    expect(read).toBeLessThan(50 * 64 * 1024);
    expect(peak - before).toBeLessThan(4 * 1024 * 1024);
    // Meanwhile, authenticated calls go through at once.
    const t0 = Date.now();
    const calls = await Promise.all([1, 2, 3, 4, 5].map((n) => stack.call('/v1/tools/echo', { message: `authenticated ${n}` }, { jwt })));
    expect(calls.map((c) => c.status)).toEqual([200, 200, 200, 200, 200]);
    expect(Date.now() - t0).toBeLessThan(5000);
    // The measure is sensitive: 10 authenticated uploads stalled the same way are buffered for the check
    // (the route's limit is MAX_REQUEST_BYTES, read at the connection buffer's pace).
    const authenticated = Array.from({ length: 10 }, () => stalledUpload(stack.envoyHttpPort, { authorization: `Bearer ${jwt}` }));
    let buffered = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && buffered < 10 * 1024 * 1024; await new Promise((r) => setTimeout(r, 200))) buffered = (await envoyMemory()) - before;
    for (const u of authenticated) u.stop();
    expect(buffered).toBeGreaterThan(10 * 1024 * 1024);
    process.stdout.write(
      `envoy allocated: before ${before} B; 50 stalled unauthenticated uploads: peak until their 401s +${peak - before} B, at the 401s +${atTheRefusals - before} B, bytes read ${read}; 10 stalled authenticated ones +${buffered} B\n`,
    );
  });

  it('still reads an authenticated body of up to 2 MiB whole for the check (the route\'s buffer, not the connection\'s)', async () => {
    // 2 MiB less a byte: far past the 32 KiB connection buffer, within the request limit.
    const body = `{"message": "whole"${' '.repeat(TWO_MIB - 21)}}`;
    expect(Buffer.byteLength(body)).toBe(TWO_MIB - 1);
    stack.upstream.clear();
    const res = await stack.call('/v1/tools/echo', undefined, { jwt, rawBody: body });
    expect(res.status).toBe(200);
    // The authz server decided on all of it (a body Envoy cut is refused 413 body_too_large), and the upstream got it all.
    expect(stack.upstream.requests().map((r) => r.body.length)).toEqual([TWO_MIB - 1]);
    // The same for a large MCP POST (a tools/call of 1.5 MiB) on /mcp.
    const call = JSON.stringify({ jsonrpc: '2.0', id: 'large', method: 'tools/call', params: { name: 'echo', arguments: { message: 'whole' } } });
    const mcpBody = `${call.slice(0, -1)}${' '.repeat(1536 * 1024)}}`;
    const mcpJwt = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
    stack.upstream.clear();
    const mcp = await stack.call('/mcp', undefined, { jwt: mcpJwt, rawBody: mcpBody, headers: { accept: 'application/json, text/event-stream' } });
    expect(mcp.status).toBe(200);
    expect(stack.upstream.requests().map((r) => [r.headers['x-toolgate-mcp-method'], r.body.length])).toEqual([['tools/call', mcpBody.length]]);
  });

  it('cuts an authenticated upload that is too slow at the request timeout, and headers that never end at the header timeout', async () => {
    const upload = slowUpload(stack.envoyHttpPort, { authorization: `Bearer ${jwt}` }, 200);
    const head = await upload.head;
    const closed = await upload.closedAfterMs;
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(closed).toBeGreaterThan(3500);
    expect(closed).toBeLessThan(10_000);

    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port: stack.envoyHttpPort });
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write('POST /v1/tools/echo HTTP/1.1\r\nhost: toolgate\r\n'));
    const timer = setInterval(() => !socket.destroyed && socket.write('x-slow: 1\r\n'), 300);
    await new Promise((resolve) => socket.on('close', resolve));
    clearInterval(timer);
    expect(Date.now() - started).toBeGreaterThan(1500);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it(`holds at most ${CONNECTION_CAP} agent connections: past that, new ones are closed at accept`, async () => {
    const sockets: Socket[] = [];
    const closed = new Set<Socket>();
    for (let i = 0; i < CONNECTION_CAP + 20; i++) {
      const socket = connect({ host: '127.0.0.1', port: stack.envoyHttpPort });
      socket.on('error', () => undefined);
      socket.on('close', () => closed.add(socket));
      sockets.push(socket);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const open = sockets.filter((s) => !closed.has(s)).length;
    for (const s of sockets) s.destroy();
    expect(open).toBeLessThanOrEqual(CONNECTION_CAP);
    expect(open).toBeGreaterThan(CONNECTION_CAP / 2);
    const stats = await (await fetch(`http://127.0.0.1:${stack.envoyAdminPort}/stats?filter=downstream_global_cx_overflow`)).text();
    const overflow = [...stats.matchAll(/downstream_global_cx_overflow: (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(overflow).toBeGreaterThanOrEqual(20);
    // Once they are gone, agents are served again.
    await new Promise((r) => setTimeout(r, 500));
    expect((await stack.call('/v1/tools/echo', { message: 'after the flood' }, { jwt })).status).toBe(200);
  });
});
