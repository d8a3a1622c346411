import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { PROTOS_DIR } from '../../shared/repo-paths.js';
import type { CheckRequest, CheckResponse } from './check-types.js';
import type { HealthCheckRequest, HealthCheckResponse } from './health-service.js';

/** Options that make decoded messages match check-types.ts (and int64 match protojson's decimal strings). */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
  includeDirs: [PROTOS_DIR],
};

const AUTHORIZATION_PROTO = join('envoy', 'service', 'auth', 'v3', 'external_auth.proto');
const HEALTH_PROTO = join('grpc', 'health', 'v1', 'health.proto');

/** How one method's messages go to and from bytes. */
export interface MethodCodec<Req, Res> {
  path: string;
  deserialize(bytes: Buffer): Req;
  serialize(message: Res): Buffer;
}

export interface ServerCodecs {
  check: MethodCodec<CheckRequest, CheckResponse>;
  healthCheck: MethodCodec<HealthCheckRequest, HealthCheckResponse>;
  healthWatch: MethodCodec<HealthCheckRequest, HealthCheckResponse>;
}

/**
 * One method's codec from a loaded package definition. The loader options above make the decoded shapes
 * those of the hand-written message types (check-types.ts, health-service.ts, the ext_proc codec).
 */
function methodCodec<Req, Res extends object>(def: protoLoader.PackageDefinition, service: string, method: string): MethodCodec<Req, Res> {
  const m = (def[service] as protoLoader.ServiceDefinition | undefined)?.[method];
  if (!m) throw new Error(`protos lack ${service}/${method}`);
  return { path: m.path, deserialize: (bytes) => m.requestDeserialize(bytes) as Req, serialize: (message) => m.responseSerialize(message) };
}

/** The codec of one method of a proto file under protos/ (for a service served beside Check, e.g. ext_proc). */
export function loadMethodCodec<Req, Res extends object>(protoPath: string, service: string, method: string): MethodCodec<Req, Res> {
  return methodCodec(protoLoader.loadSync(protoPath, LOADER_OPTIONS), service, method);
}

/** The (de)serializers of the methods the authz server serves, from the protos in protos/. */
export function loadServerCodecs(): ServerCodecs {
  const def = protoLoader.loadSync([AUTHORIZATION_PROTO, HEALTH_PROTO], LOADER_OPTIONS);
  const codec = <Req, Res extends object>(service: string, method: string): MethodCodec<Req, Res> => methodCodec(def, service, method);
  return {
    check: codec('envoy.service.auth.v3.Authorization', 'Check'),
    healthCheck: codec('grpc.health.v1.Health', 'Check'),
    healthWatch: codec('grpc.health.v1.Health', 'Watch'),
  };
}

/** A client constructor for tests and benchmarks that speak Check directly (without Envoy). */
export function loadAuthorizationClient(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(AUTHORIZATION_PROTO, LOADER_OPTIONS));
  const authV3 = (((pkg.envoy as grpc.GrpcObject).service as grpc.GrpcObject).auth as grpc.GrpcObject).v3 as grpc.GrpcObject;
  return authV3.Authorization as grpc.ServiceClientConstructor;
}

/** A client constructor for grpc.health.v1.Health, for tests and probes. */
export function loadHealthClient(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, LOADER_OPTIONS));
  return (((pkg.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
}
