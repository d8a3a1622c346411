import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { PROTOS_DIR } from '../../shared/repo-paths.js';

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

export interface ServiceDefinitions {
  authorization: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

export function loadServiceDefinitions(): ServiceDefinitions {
  const def = protoLoader.loadSync(
    [join('envoy', 'service', 'auth', 'v3', 'external_auth.proto'), join('grpc', 'health', 'v1', 'health.proto')],
    LOADER_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(def);
  const auth = (pkg.envoy as grpc.GrpcObject).service as grpc.GrpcObject;
  const authV3 = (auth.auth as grpc.GrpcObject).v3 as grpc.GrpcObject;
  const health = ((pkg.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return {
    authorization: (authV3.Authorization as grpc.ServiceClientConstructor).service,
    health: (health.Health as grpc.ServiceClientConstructor).service,
  };
}

/** A client constructor for tests and benchmarks that speak Check directly (without Envoy). */
export function loadAuthorizationClient(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(join('envoy', 'service', 'auth', 'v3', 'external_auth.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def);
  const authV3 = (((pkg.envoy as grpc.GrpcObject).service as grpc.GrpcObject).auth as grpc.GrpcObject).v3 as grpc.GrpcObject;
  return authV3.Authorization as grpc.ServiceClientConstructor;
}
