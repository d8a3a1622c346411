import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckRequest, CheckResponse } from '../../../src/authz/grpc/check-types.js';
import { parseGrpcTimeout } from '../../../src/authz/grpc/grpc-timeout.js';
import { HealthService } from '../../../src/authz/grpc/health-service.js';
import { serverStream, startHttp2GrpcServer, unary, type GrpcCall, type RunningGrpcServer } from '../../../src/authz/grpc/http2-grpc-server.js';
import { loadAuthorizationClient, loadHealthClient, loadServerCodecs } from '../../../src/authz/grpc/proto-loading.js';
import { createLogger } from '../../../src/shared/logger.js';

// Deadlines, cancellation, stream limits, windows and drain, checked with grpc-js (an independent client)
// and raw node:http2 where the wire itself is the point.
type Method = (...args: unknown[]) => unknown;
type Client = grpc.Client & { Check: Method; Watch: Method };

const OK: CheckResponse = { status: { code: 0 } };
const servers: RunningGrpcServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.shutdown(100);
});

/** A server whose Check waits `delayMs` (or until cancelled) and records what its calls saw. */
async function slowServer(delayMs: number, health = new HealthService()) {
  const seen: { call: GrpcCall<CheckRequest>; abortedWith?: unknown; finished: boolean }[] = [];
  const codecs = loadServerCodecs();
  const server = await startHttp2GrpcServer('127.0.0.1:0', {
    maxMessageBytes: 4 * 1024 * 1024,
    log: createLogger('test', () => undefined),
    maxConcurrentStreams: 7,
    methods: {
      [codecs.check.path]: unary(codecs.check, (call) => {
        const entry: (typeof seen)[number] = { call, finished: false };
        seen.push(entry);
        call.signal.addEventListener('abort', () => (entry.abortedWith = call.signal.reason));
        return new Promise<CheckResponse>((resolve) =>
          setTimeout(() => {
            entry.finished = true;
            resolve(OK);
          }, delayMs),
        );
      }),
      [codecs.healthWatch.path]: serverStream(codecs.healthWatch, (call, send, onClose) => health.watch(call, send, onClose)),
    },
  });
  servers.push(server);
  return { server, seen, health };
}

function client(port: number): Client {
  const Ctor = loadAuthorizationClient();
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Client;
}

function check(c: Client, opts: grpc.CallOptions = {}, body = ''): { result: Promise<CheckResponse>; call: grpc.ClientUnaryCall } {
  let call!: grpc.ClientUnaryCall;
  const result = new Promise<CheckResponse>((resolve, reject) => {
    call = c.Check({ attributes: { request: { http: { path: '/v1/tools/echo', body } } } }, new grpc.Metadata(), opts, (err: grpc.ServiceError | null, res: CheckResponse) =>
      err ? reject(err) : resolve(res),
    ) as grpc.ClientUnaryCall;
  });
  return { result, call };
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('grpc-timeout', () => {
  it('reads every unit and refuses what the spec does not allow', () => {
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
    expect(parseGrpcTimeout('50m')).toBe(50);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('500000u')).toBe(500);
    expect(parseGrpcTimeout('7000000n')).toBeCloseTo(7);
    for (const bad of ['', '50', 'm', '123456789m', '5x', '-5m', '5 m']) expect(() => parseGrpcTimeout(bad)).toThrow(/grpc-timeout/);
  });
});

describe('deadlines and cancellation', () => {
  it('answers DEADLINE_EXCEEDED at the deadline and tells the handler, which never answers late', async () => {
    const { server, seen } = await slowServer(400);
    const c = client(server.port);
    await check(c).result; // connected, so the 50 ms are the call's own
    const started = Date.now();
    await expect(check(c, { deadline: Date.now() + 50 }).result).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(Date.now() - started).toBeLessThan(350);
    await until(() => seen[1]?.abortedWith !== undefined);
    expect(seen[1]?.call.deadline).toBeDefined();
    // grpc-js resets the stream at its deadline; the server saw the deadline or the cancel, whichever came first.
    expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED]).toContain((seen[1]?.abortedWith as { code: number }).code);
    c.close();
  });

  it('sends DEADLINE_EXCEEDED itself when the client keeps waiting (a raw stream with grpc-timeout)', async () => {
    const { server } = await slowServer(400);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const codecs = loadServerCodecs();
    const framed = Buffer.from([0, 0, 0, 0, 0]); // an empty CheckRequest
    const req = session.request({ ':method': 'POST', ':path': codecs.check.path, 'content-type': 'application/grpc', 'grpc-timeout': '50m', te: 'trailers' });
    const status = await new Promise<string | undefined>((resolve) => {
      req.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
      req.on('trailers', (t) => resolve(String(t['grpc-status'])));
      req.on('data', () => undefined);
      req.end(framed);
    });
    expect(status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    session.close();
  });

  it('tells the handler when the client cancels', async () => {
    const { server, seen } = await slowServer(2000);
    const c = client(server.port);
    const { result, call } = check(c);
    await until(() => seen.length === 1);
    call.cancel();
    await expect(result).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    await until(() => seen[0]?.abortedWith !== undefined);
    expect(seen[0]?.abortedWith).toMatchObject({ code: grpc.status.CANCELLED });
    c.close();
  });
});

describe('connection settings', () => {
  it('advertises its stream limit and a window a 2 MiB body fits in, and takes such a body', async () => {
    const { server } = await slowServer(0);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    await new Promise((r) => session.once('remoteSettings', r));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    expect(session.remoteSettings.initialWindowSize).toBeGreaterThanOrEqual(2 * 1024 * 1024 + 4096);
    session.close();
    const c = client(server.port);
    await expect(check(c, {}, 'x'.repeat(2 * 1024 * 1024)).result).resolves.toEqual(expect.objectContaining({ status: expect.anything() }));
    c.close();
  });
});

describe('shutdown', () => {
  it('ends Watch streams with UNAVAILABLE, lets calls in flight finish, and refuses new connections', async () => {
    const { server, seen, health } = await slowServer(300);
    health.setServing(true);
    const HealthCtor = loadHealthClient();
    const hc = new HealthCtor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Client;
    const watch = hc.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    const watchEnd = new Promise<grpc.StatusObject | grpc.ServiceError>((resolve) => {
      watch.on('data', () => undefined);
      watch.on('error', resolve);
      watch.on('status', resolve);
    });
    const c = client(server.port);
    const inFlight = Array.from({ length: 5 }, () => check(c).result);
    await until(() => seen.length === 5);
    const stopped = server.shutdown(5000);
    servers.splice(servers.indexOf(server), 1);
    expect(await watchEnd).toMatchObject({ code: grpc.status.UNAVAILABLE });
    // Every call that was in flight when the GOAWAY went out is answered.
    const answers = await Promise.allSettled(inFlight);
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill('fulfilled'));
    await stopped;
    await expect(check(client(server.port), { deadline: Date.now() + 1000 }).result).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    c.close();
    hc.close();
  });
});
