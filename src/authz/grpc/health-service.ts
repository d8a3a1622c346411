import type * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/**
 * grpc.health.v1.Health for the ext_authz server: SERVING once a policy can be evaluated, for the overall
 * server ("") and for `envoy.service.auth.v3.Authorization`. Envoy and Kubernetes probes use it.
 */
export class HealthService {
  private readonly events = new EventEmitter();
  private serving = false;
  static readonly SERVICES = new Set(['', 'envoy.service.auth.v3.Authorization']);

  setServing(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    this.events.emit('change');
  }

  private statusFor(service: string): ServingStatus {
    if (!HealthService.SERVICES.has(service)) return 'SERVICE_UNKNOWN';
    return this.serving ? 'SERVING' : 'NOT_SERVING';
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, { status: ServingStatus }>, callback: grpc.sendUnaryData<{ status: ServingStatus }>) => {
        const status = this.statusFor(call.request.service ?? '');
        if (status === 'SERVICE_UNKNOWN') callback({ code: 5, details: `unknown service "${call.request.service}"` });
        else callback(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: ServingStatus }>) => {
        const service = call.request.service ?? '';
        const send = (): void => {
          call.write({ status: this.statusFor(service) });
        };
        send();
        this.events.on('change', send);
        call.on('cancelled', () => this.events.off('change', send));
        call.on('close', () => this.events.off('change', send));
      },
    };
  }
}
