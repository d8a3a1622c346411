import { Client, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grpcCredentialsFor, grpcTargetOf } from '../../shared/tracing.js';
import type { Logger } from '../../shared/logger.js';

/** OTLP/gRPC trace export: the one method the relay answers. */
const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** A sandboxed tool sends its few spans; anything this large is not a trace worth forwarding. */
const MAX_EXPORT_BYTES = 1024 * 1024;

const asIs = (b: Buffer): Buffer => b;

/**
 * Where sandboxed tool runners send their spans. A sandbox has no network (by design), so the executor binds
 * this Unix socket into each sandbox and forwards every OTLP trace export, bytes untouched, to the collector
 * the executor itself exports to. A runner's spans so join the call's trace as a Job's do. It trusts the
 * sandbox no more than the collector trusts a Job: both can only add spans.
 */
export class SpanRelay {
  private constructor(
    readonly socketPath: string,
    private readonly dir: string,
    private readonly server: Server,
    private readonly upstream: Client,
  ) {}

  static async start(collectorEndpoint: string, log: Logger): Promise<SpanRelay> {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-spans-'));
    const socketPath = join(dir, 'otlp.sock');
    const upstream = new Client(grpcTargetOf(collectorEndpoint), grpcCredentialsFor(collectorEndpoint));
    const server = new Server({ 'grpc.max_receive_message_length': MAX_EXPORT_BYTES });
    server.addService(
      { export: { path: EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: asIs, requestDeserialize: asIs, responseSerialize: asIs, responseDeserialize: asIs } },
      {
        export: (call: ServerUnaryCall<Buffer, Buffer>, reply: sendUnaryData<Buffer>) => {
          upstream.makeUnaryRequest(EXPORT_PATH, asIs, asIs, call.request, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res?: Buffer) => {
            if (err) {
              log.warn('could not forward a sandboxed runner\'s spans', { cause: err.details || err.message });
              return reply({ code: err.code ?? status.UNAVAILABLE, details: err.details });
            }
            reply(null, res);
          });
        },
      },
    );
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    return new SpanRelay(socketPath, dir, server, upstream);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.upstream.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
