import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/logger.js';
import { errorMessage } from '../../shared/logger.js';
import { RpcCode } from './check-types.js';

/**
 * The gRPC wire protocol (HTTP/2, length-prefixed messages, status in trailers) served straight from
 * node:http2 for the few methods the authz server exposes. grpc-js's server machinery (call objects,
 * metadata objects, filter stacks, stream decoders) cost as much CPU per check as the policy itself;
 * Envoy's ext_authz client needs only this subset: unary calls without compression, plus a server stream
 * for health watches. Messages are (de)serialized by the same proto-loader definitions as before.
 */

/** A request as a handler sees it: the decoded message and the call's metadata (lower-case names). */
export interface GrpcCall<Req> {
  request: Req;
  metadata: http2.IncomingHttpHeaders;
}

export class GrpcError extends Error {
  constructor(
    readonly code: RpcCode,
    message: string,
  ) {
    super(message);
  }
}

export interface UnaryMethod<Req, Res> {
  kind: 'unary';
  deserialize(bytes: Buffer): Req;
  serialize(message: Res): Buffer;
  handle(call: GrpcCall<Req>): Promise<Res>;
}

/** A server stream: `open` sends messages with `send` until the client goes away (then `onClose` runs). */
export interface ServerStreamMethod<Req, Res> {
  kind: 'server-stream';
  deserialize(bytes: Buffer): Req;
  serialize(message: Res): Buffer;
  open(call: GrpcCall<Req>, send: (message: Res) => void, onClose: (cleanup: () => void) => void): void;
}

/**
 * A bidirectional stream answered message by message: one response per request message, in order (Envoy's
 * ext_proc protocol). The call ends when the client half-closes and every answer has been sent.
 */
export interface BidiStreamMethod<Req, Res> {
  kind: 'bidi';
  deserialize(bytes: Buffer): Req;
  serialize(message: Res): Buffer;
  handle(call: GrpcCall<Req>): Promise<Res>;
}

/** Methods are declared with method syntax, so a typed method fits this table of untyped ones. */
export type GrpcMethod = UnaryMethod<unknown, unknown> | ServerStreamMethod<unknown, unknown> | BidiStreamMethod<unknown, unknown>;

interface Codec<Req, Res> {
  deserialize(bytes: Buffer): Req;
  serialize(message: Res): Buffer;
}

export function unary<Req, Res>(codec: Codec<Req, Res>, handle: (call: GrpcCall<Req>) => Promise<Res>): UnaryMethod<Req, Res> {
  return { kind: 'unary', deserialize: (b) => codec.deserialize(b), serialize: (m) => codec.serialize(m), handle };
}

export function serverStream<Req, Res>(codec: Codec<Req, Res>, open: ServerStreamMethod<Req, Res>['open']): ServerStreamMethod<Req, Res> {
  return { kind: 'server-stream', deserialize: (b) => codec.deserialize(b), serialize: (m) => codec.serialize(m), open };
}

export function bidiStream<Req, Res>(codec: Codec<Req, Res>, handle: (call: GrpcCall<Req>) => Promise<Res>): BidiStreamMethod<Req, Res> {
  return { kind: 'bidi', deserialize: (b) => codec.deserialize(b), serialize: (m) => codec.serialize(m), handle };
}

export interface GrpcServerOptions {
  /** `/package.Service/Method` → implementation */
  methods: Record<string, GrpcMethod>;
  /** Largest request message accepted; larger ones are refused with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  log: Logger;
}

export interface RunningGrpcServer {
  port: number;
  /** Stops accepting; open sessions get GOAWAY and finish their calls; after graceMs they are destroyed. */
  shutdown(graceMs?: number): Promise<void>;
}

const { HTTP2_HEADER_PATH, HTTP2_HEADER_METHOD, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_STATUS } = http2.constants;
const RESPONSE_HEADERS = { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto', 'grpc-accept-encoding': 'identity' };
const OK_TRAILERS = { 'grpc-status': '0' };

/**
 * grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2 spec) so any text survives the header. The bytes
 * come from Buffer, not encodeURIComponent, which throws on a lone surrogate.
 */
function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]+/gu, (run) => {
    let out = '';
    for (const byte of Buffer.from(run, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return out;
  });
}

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** Answers a call with only a status (no message): the "Trailers-Only" form. */
function respondStatus(stream: http2.ServerHttp2Stream, code: RpcCode, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ...RESPONSE_HEADERS, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
}

/** Splits the request body into its single length-prefixed message, or says why it cannot. */
function singleMessage(chunks: Buffer[], length: number): Buffer {
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
  if (body.length < 5) throw new GrpcError(RpcCode.INTERNAL, 'request has no complete gRPC message');
  if (body[0] !== 0) throw new GrpcError(RpcCode.UNIMPLEMENTED, 'compressed messages are not supported (grpc-encoding identity only)');
  const size = body.readUInt32BE(1);
  if (body.length !== 5 + size) throw new GrpcError(RpcCode.INTERNAL, 'a unary call must carry exactly one gRPC message');
  return body.subarray(5);
}

export async function startHttp2GrpcServer(address: string, opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { methods, maxMessageBytes, log } = opts;
  const server = http2.createServer({ maxSessionMemory: 64 });
  const sessions = new Set<http2.ServerHttp2Session>();

  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    // A broken connection must never take the server down; the session is gone, the log says why.
    session.on('error', (err) => log.warn('gRPC session error', { cause: errorMessage(err) }));
  });

  server.on('stream', (stream, headers) => {
    stream.on('error', (err) => log.warn('gRPC stream error', { path: String(headers[HTTP2_HEADER_PATH]), cause: errorMessage(err) }));
    const path = String(headers[HTTP2_HEADER_PATH]);
    const method = methods[path];
    const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? '');
    if (headers[HTTP2_HEADER_METHOD] !== 'POST' || !contentType.startsWith('application/grpc')) {
      if (!stream.destroyed) stream.respond({ [HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      return;
    }
    if (!method) {
      respondStatus(stream, RpcCode.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      respondStatus(stream, RpcCode.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);
      return;
    }

    if (method.kind === 'bidi') {
      serveBidi(stream, method, headers, maxMessageBytes, log);
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      length += chunk.length;
      if (length > maxMessageBytes + 5) {
        refused = true;
        respondStatus(stream, RpcCode.RESOURCE_EXHAUSTED, `request message larger than ${maxMessageBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (refused) return;
      let request: unknown;
      try {
        request = method.deserialize(singleMessage(chunks, length));
      } catch (err) {
        if (err instanceof GrpcError) respondStatus(stream, err.code, err.message);
        else respondStatus(stream, RpcCode.INTERNAL, `request message could not be decoded: ${errorMessage(err)}`);
        return;
      }
      const call = { request, metadata: headers };
      // A handler that throws before returning its promise is a bug; it costs this call, never the server.
      try {
        if (method.kind === 'unary') answerUnary(stream, method, call, log);
        else openServerStream(stream, method, call);
      } catch (err) {
        log.error('gRPC handler failed', { path, cause: errorMessage(err) });
        respondStatus(stream, RpcCode.INTERNAL, 'internal error');
      }
    });
  });

  const [host, portText] = splitAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // After start, a listener error (rare: the socket fails) is logged rather than thrown into nowhere.
  server.on('error', (err) => log.error('gRPC server error', { cause: errorMessage(err) }));

  return {
    port: (server.address() as AddressInfo).port,
    shutdown: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        for (const s of sessions) s.close();
      }),
  };
}

function answerUnary(stream: http2.ServerHttp2Stream, method: UnaryMethod<unknown, unknown>, call: GrpcCall<unknown>, log: Logger): void {
  method.handle(call).then(
    (response: unknown) => {
      if (stream.destroyed || stream.closed) return;
      let bytes: Buffer;
      try {
        bytes = frame(method.serialize(response));
      } catch (err) {
        log.error('gRPC response could not be encoded', { cause: errorMessage(err) });
        respondStatus(stream, RpcCode.INTERNAL, 'response could not be encoded');
        return;
      }
      stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
      stream.end(bytes);
    },
    (err: unknown) => {
      if (err instanceof GrpcError) respondStatus(stream, err.code, err.message);
      else {
        log.error('gRPC handler failed', { cause: errorMessage(err) });
        respondStatus(stream, RpcCode.INTERNAL, 'internal error');
      }
    },
  );
}

function openServerStream(stream: http2.ServerHttp2Stream, method: ServerStreamMethod<unknown, unknown>, call: GrpcCall<unknown>): void {
  stream.respond(RESPONSE_HEADERS);
  method.open(
    call,
    (message) => {
      if (!stream.destroyed && !stream.closed) stream.write(frame(method.serialize(message)));
    },
    (cleanup) => stream.once('close', cleanup),
  );
}

function serveBidi(stream: http2.ServerHttp2Stream, method: BidiStreamMethod<unknown, unknown>, headers: http2.IncomingHttpHeaders, maxMessageBytes: number, log: Logger): void {
  let pending: Buffer = Buffer.alloc(0);
  let chain: Promise<void> = Promise.resolve();
  let trailers: Record<string, string> = OK_TRAILERS;
  let responded = false;
  let failed = false;
  const open = (): void => {
    if (responded) return;
    responded = true;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
  };
  const fail = (code: RpcCode, message: string): void => {
    if (failed) return;
    failed = true;
    if (!responded) return respondStatus(stream, code, message);
    trailers = { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
    if (!stream.destroyed && !stream.closed) stream.end();
  };
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      if (pending[0] !== 0) return fail(RpcCode.UNIMPLEMENTED, 'compressed messages are not supported (grpc-encoding identity only)');
      const size = pending.readUInt32BE(1);
      if (size > maxMessageBytes) return fail(RpcCode.RESOURCE_EXHAUSTED, `request message larger than ${maxMessageBytes} bytes`);
      if (pending.length < 5 + size) break;
      const bytes = pending.subarray(5, 5 + size);
      pending = pending.subarray(5 + size);
      let request: unknown;
      try {
        request = method.deserialize(bytes);
      } catch (err) {
        return fail(RpcCode.INTERNAL, `request message could not be decoded: ${errorMessage(err)}`);
      }
      chain = chain
        .then(() => method.handle({ request, metadata: headers }))
        .then((response) => {
          if (failed || stream.destroyed || stream.closed) return;
          open();
          stream.write(frame(method.serialize(response)));
        })
        .catch((err: unknown) => {
          if (!(err instanceof GrpcError)) log.error('gRPC stream handler failed', { cause: errorMessage(err) });
          fail(err instanceof GrpcError ? err.code : RpcCode.INTERNAL, err instanceof GrpcError ? err.message : 'internal error');
        });
    }
  });
  stream.on('end', () => {
    void chain.then(() => {
      if (failed || stream.destroyed || stream.closed) return;
      open();
      stream.end();
    });
  });
}

/** "host:port", "[v6]:port" or ":port" → [host, port]. */
function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  if (i === -1) throw new Error(`gRPC address "${address}" has no port`);
  const host = address.slice(0, i).replace(/^\[(.*)\]$/u, '$1');
  return [host === '' ? '0.0.0.0' : host, address.slice(i + 1)];
}
