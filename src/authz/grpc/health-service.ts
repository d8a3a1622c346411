import { EventEmitter } from 'node:events';
import { RpcCode } from './check-types.js';
import { GrpcError, type GrpcCall } from './http2-grpc-server.js';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckRequest {
  service?: string;
}

export interface HealthCheckResponse {
  status: ServingStatus;
}

/**
 * grpc.health.v1.Health for the ext_authz server: SERVING once a policy can be evaluated, for the overall
 * server ("") and for `envoy.service.auth.v3.Authorization`. Envoy's gRPC health checks and Kubernetes
 * gRPC probes use it.
 */
export class HealthService {
  private readonly events = new EventEmitter();
  private serving = false;
  static readonly SERVICES = new Set(['', 'envoy.service.auth.v3.Authorization']);

  constructor() {
    // Every open Watch listens; the count is bounded by open streams, not a leak.
    this.events.setMaxListeners(0);
  }

  setServing(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    this.events.emit('change');
  }

  private statusFor(service: string): ServingStatus {
    if (!HealthService.SERVICES.has(service)) return 'SERVICE_UNKNOWN';
    return this.serving ? 'SERVING' : 'NOT_SERVING';
  }

  /** Health/Check: the status now; an unknown service is NOT_FOUND, as the health protocol says. */
  async check(call: GrpcCall<HealthCheckRequest>): Promise<HealthCheckResponse> {
    const service = call.request.service ?? '';
    const status = this.statusFor(service);
    if (status === 'SERVICE_UNKNOWN') throw new GrpcError(RpcCode.NOT_FOUND, `unknown service "${service}"`);
    return { status };
  }

  /** Health/Watch: the status now, then every change, until the client goes away. */
  watch(call: GrpcCall<HealthCheckRequest>, send: (message: HealthCheckResponse) => void, onClose: (cleanup: () => void) => void): void {
    const service = call.request.service ?? '';
    let last: ServingStatus | undefined;
    const update = (): void => {
      const status = this.statusFor(service);
      if (status !== last) send({ status });
      last = status;
    };
    update();
    this.events.on('change', update);
    onClose(() => this.events.off('change', update));
  }
}
