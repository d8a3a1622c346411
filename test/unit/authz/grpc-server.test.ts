import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRequest, CheckResponse } from '../../../src/authz/grpc/check-types.js';
import { HealthService } from '../../../src/authz/grpc/health-service.js';
import { GrpcError, serverStream, startHttp2GrpcServer, unary, type GrpcCall, type RunningGrpcServer } from '../../../src/authz/grpc/http2-grpc-server.js';
import { loadAuthorizationClient, loadHealthClient, loadServerCodecs } from '../../../src/authz/grpc/proto-loading.js';
import { createLogger } from '../../../src/shared/logger.js';

// The server speaks gRPC over node:http2 itself; grpc-js (a full, independent implementation) is the client
// that checks it keeps the wire contract Envoy relies on.
const logLines: string[] = [];
const log = createLogger('test', (line) => logLines.push(line));
const health = new HealthService();
let server: RunningGrpcServer;
let lastCall: GrpcCall<CheckRequest> | undefined;

type Method = (...args: unknown[]) => unknown;
type Client = grpc.Client & { Check: Method; Watch: Method };

beforeAll(async () => {
  const codecs = loadServerCodecs();
  server = await startHttp2GrpcServer('127.0.0.1:0', {
    maxMessageBytes: 64 * 1024,
    log,
    methods: {
      [codecs.check.path]: unary(codecs.check, async (call): Promise<CheckResponse> => {
        lastCall = call;
        const path = call.request.attributes?.request?.http?.path;
        if (path === '/boom') throw new Error('handler bug');
        if (path === '/refuse') throw new GrpcError(7, 'refusé: naïve “quotes” %');
        if (path === '/half-pair') throw new GrpcError(7, 'half \ud800 pair');
        return { status: { code: 0 }, ok_response: { headers: [{ header: { key: 'x-seen', value: String(path) } }], headers_to_remove: [], response_headers_to_add: [], query_parameters_to_set: [], query_parameters_to_remove: [] } };
      }),
      [codecs.healthCheck.path]: unary(codecs.healthCheck, (call) => health.check(call)),
      // A handler that throws before it returns a promise.
      '/test.Broken/Sync': unary(codecs.check, (): Promise<CheckResponse> => {
        throw new Error('sync handler bug');
      }),
      [codecs.healthWatch.path]: serverStream(codecs.healthWatch, (call, send, onClose) => health.watch(call, send, onClose)),
    },
  });
});

afterAll(async () => {
  await server.shutdown(100);
});

function authzClient(): Client {
  const Ctor = loadAuthorizationClient();
  return new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Client;
}

function check(client: Client, path: string, metadata = new grpc.Metadata()): Promise<CheckResponse> {
  return new Promise((resolve, reject) => {
    client.Check({ attributes: { request: { http: { path, method: 'POST' } } } }, metadata, (err: grpc.ServiceError | null, res: CheckResponse) => (err ? reject(err) : resolve(res)));
  });
}

describe('gRPC over node:http2', () => {
  it('answers a unary call and hands the handler the decoded request and the call metadata', async () => {
    const client = authzClient();
    const md = new grpc.Metadata();
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const res = await check(client, '/v1/tools/echo', md);
    expect(res.ok_response?.headers?.[0]?.header).toEqual({ key: 'x-seen', value: '/v1/tools/echo' });
    expect(lastCall?.request.attributes?.request?.http?.method).toBe('POST');
    expect(lastCall?.metadata.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    // Many calls on one connection, concurrently, each answered with its own response.
    const paths = Array.from({ length: 50 }, (_, i) => `/p/${i}`);
    const answers = await Promise.all(paths.map((p) => check(client, p)));
    expect(answers.map((a) => a.ok_response?.headers?.[0]?.header?.value)).toEqual(paths);
    client.close();
  });

  it('carries a handler-chosen status and a non-ASCII message intact; a handler bug is INTERNAL, and serving goes on', async () => {
    const client = authzClient();
    await expect(check(client, '/refuse')).rejects.toMatchObject({ code: 7, details: 'refusé: naïve “quotes” %' });
    await expect(check(client, '/boom')).rejects.toMatchObject({ code: grpc.status.INTERNAL, details: 'internal error' });
    expect(logLines.some((l) => l.includes('gRPC handler failed') && l.includes('handler bug'))).toBe(true);
    // A message no URI encoder accepts (a lone surrogate) still goes out, as UTF-8's replacement character.
    await expect(check(client, '/half-pair')).rejects.toMatchObject({ code: 7, details: 'half \ufffd pair' });
    const sync = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest('/test.Broken/Sync', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e as grpc.ServiceError)),
    );
    expect(sync).toMatchObject({ code: grpc.status.INTERNAL, details: 'internal error' });
    expect(logLines.some((l) => l.includes('gRPC handler failed') && l.includes('sync handler bug'))).toBe(true);
    await expect(check(client, '/after')).resolves.toBeDefined();
    client.close();
  });

  it('refuses an oversized message with RESOURCE_EXHAUSTED and an unknown method with UNIMPLEMENTED', async () => {
    const client = authzClient();
    const big = { attributes: { request: { http: { path: '/big', body: 'x'.repeat(100 * 1024) } } } };
    const err = await new Promise<grpc.ServiceError>((resolve) => client.Check(big, (e: grpc.ServiceError) => resolve(e)));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const unknown = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Nope', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e as grpc.ServiceError)),
    );
    expect(unknown.code).toBe(grpc.status.UNIMPLEMENTED);
    await expect(check(client, '/still-serving')).resolves.toBeDefined();
    client.close();
  });

  it('answers bytes that are not a gRPC message, or not a gRPC request, with an error instead of falling over', async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const send = (headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader> =>
      new Promise((resolve, reject) => {
        const req = session.request(headers);
        let answer: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => (answer = { ...h }));
        req.on('trailers', (t) => (answer = { ...answer, ...t }));
        req.on('data', () => undefined);
        req.on('end', () => resolve(answer));
        req.on('error', reject);
        req.end(body);
      });
    const grpcHeaders = { ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc' };
    expect((await send(grpcHeaders, Buffer.from([0, 0, 0, 0, 9, 1, 2])))['grpc-status']).toBe('13'); // truncated
    expect((await send(grpcHeaders, Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff])))['grpc-status']).toBe('13'); // not protobuf
    expect((await send(grpcHeaders, Buffer.from([1, 0, 0, 0, 0])))['grpc-status']).toBe('12'); // compressed
    expect((await send({ ...grpcHeaders, 'content-type': 'text/plain' }, Buffer.from('hi')))[':status']).toBe(415);
    session.close();
    await expect(check(authzClient(), '/fine')).resolves.toBeDefined();
  });
});

describe('grpc.health.v1.Health', () => {
  it('reports NOT_SERVING until a policy is active, then SERVING; NOT_FOUND for a service it does not know', async () => {
    const Ctor = loadHealthClient();
    const client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Client;
    const status = (service: string): Promise<unknown> =>
      new Promise((resolve, reject) => client.Check({ service }, (e: grpc.ServiceError | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))));
    health.setServing(false);
    await expect(status('')).resolves.toBe('NOT_SERVING');

    const seen: string[] = [];
    const watch = client.Watch({ service: 'envoy.service.auth.v3.Authorization' }) as grpc.ClientReadableStream<{ status: string }>;
    watch.on('error', () => undefined);
    const twoUpdates = new Promise<void>((resolve) =>
      watch.on('data', (m: { status: string }) => {
        seen.push(m.status);
        if (seen.length === 2) resolve();
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    health.setServing(true);
    await twoUpdates;
    expect(seen).toEqual(['NOT_SERVING', 'SERVING']);
    await expect(status('envoy.service.auth.v3.Authorization')).resolves.toBe('SERVING');
    await expect(status('other.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    watch.cancel();
    client.close();
  });
});
