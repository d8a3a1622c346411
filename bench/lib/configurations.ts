import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { DevCredentials } from '../../src/gateway/dev-credentials.js';
import { renderEnvoyConfig } from '../../src/gateway/envoy-template.js';
import { authzServerTls, ensureInternalCredentials, envoyAuthzTlsValues, type InternalCredentials } from '../../src/gateway/internal-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startEnvoy } from '../../test/support/envoy-process.js';
import { freePort, startProcess, waitForHttp, waitForTcp, type ManagedProcess } from '../../test/support/managed-process.js';

/**
 * The configurations of the check-path benchmark (four contenders and a reference), each the same Envoy
 * (rendered from envoy/toolgate.yaml) in front of the same trivial upstream:
 *   a  no ext_authz (the filter removed)
 *   b  toolgate, embedded engine (wasm in process)
 *   c  toolgate, remote engine (a real OPA server over REST)
 *   d  the OPA Envoy plugin (ext_authz gRPC), same Rego and data
 *   e  reference: ext_authz to a Node gRPC server that allows everything unread (the floor of the hop)
 */
export type ConfigName = 'a' | 'b' | 'c' | 'd' | 'e';

export const CONFIG_LABELS: Record<ConfigName, string> = {
  a: 'no ext_authz',
  b: 'toolgate embedded',
  c: 'toolgate remote (OPA)',
  d: 'OPA Envoy plugin',
  e: 'floor: allow-all Node gRPC server',
};

export interface Binaries {
  opa: string;
  opaEnvoyPlugin: string;
}

export interface Bundles {
  /** wasm bundle for the embedded engine */
  wasm: string;
  /** rego bundle for OPA and the plugin */
  rego: string;
}

export interface RunningConfig {
  name: ConfigName;
  url: string;
  /** The processes that do authorization (their CPU and memory are reported). */
  authzPids: number[];
  /** The front Envoy (its CPU includes the ext_authz client side of each check). */
  envoyPid: number;
  /** The front Envoy's admin port (its stats hold the ext_authz round-trip histogram). */
  envoyAdminPort: number;
  /** Where the authorization server listens for gRPC (0 for (a)). */
  authzPort: number;
  /** The front Envoy's access log (JSON lines; `authz_us` is each check's round trip as Envoy saw it). */
  accessLogPath: string;
  stop(): Promise<void>;
}

export const DECISION = 'bench/authz/allow';

/** The MCP resource (JWT audience for /mcp) of every benchmark Envoy. */
export const BENCH_MCP_RESOURCE = 'http://toolgate.bench/mcp';

/**
 * Worker threads of every Envoy in the benchmark. Envoy's default (one per hardware thread) is how
 * `npm run gateway`, docker-compose and the Helm chart run it; a number pins it (`--envoy-concurrency`).
 */
export type EnvoyWorkers = number | 'default';

/** The trivial upstream: an Envoy answering 200 from a direct response (after reading the request). */
export async function startUpstream(dir: string, workers: EnvoyWorkers = 'default'): Promise<{ port: number; proc: ManagedProcess }> {
  const [port, admin] = [await freePort(), await freePort()];
  const config = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
    static_resources: {
      listeners: [
        {
          name: 'upstream',
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'upstream',
                    route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: '{"status":"ok"}' } } }] }] },
                    http_filters: [
                      // Buffer the body first so large requests are read whole before the answer.
                      { name: 'envoy.filters.http.buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer', max_request_bytes: 4 * 1024 * 1024 } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
  const path = join(dir, 'upstream-envoy.yaml');
  await writeFile(path, toYaml(config));
  const proc = await startEnvoy({ configPath: path, logDir: dir, adminPort: admin, name: 'upstream-envoy', concurrency: workers });
  return { port, proc };
}

async function startFrontEnvoy(opts: { dir: string; name: string; creds: DevCredentials; authzPort: number; upstreamPort: number; withExtAuthz: boolean; workers: EnvoyWorkers; tls?: InternalCredentials }): Promise<{ url: string; proc: ManagedProcess; adminPort: number; accessLogPath: string }> {
  const [http, mtls, admin] = [await freePort(), await freePort(), await freePort()];
  const accessLogPath = join(opts.dir, `access-${opts.name}.log`);
  const rendered = await renderEnvoyConfig({
    ADMIN_PORT: admin,
    LISTEN_ADDRESS: '127.0.0.1',
    HTTP_PORT: http,
    MTLS_PORT: mtls,
    AUTHZ_HOST: '127.0.0.1',
    AUTHZ_PORT: opts.authzPort,
    AUTHZ_TIMEOUT: '2s',
    EXECUTOR_HOST: '127.0.0.1',
    EXECUTOR_PORT: opts.upstreamPort,
    MAX_REQUEST_BYTES: 2 * 1024 * 1024,
    TLS_CERT_PATH: opts.creds.serverCertPath,
    TLS_KEY_PATH: opts.creds.serverKeyPath,
    CLIENT_CA_PATH: opts.creds.caCertPath,
    JWKS_PATH: opts.creds.jwksPath,
    JWT_ISSUER: opts.creds.jwtIssuer,
    JWT_AUDIENCE: opts.creds.jwtAudience,
    ACCESS_LOG_PATH: accessLogPath,
    ...(opts.tls ? envoyAuthzTlsValues(opts.tls) : {}),
    // One MCP resource name for every configuration, so one MCP token serves all (bench/mcp-check-path.ts).
    MCP_RESOURCE_URL: BENCH_MCP_RESOURCE,
  });
  let config = rendered;
  if (!opts.withExtAuthz) {
    // (a): the same listeners, routes and JWT check, without the ext_authz filter.
    const doc = parseYaml(rendered) as { static_resources: { listeners: { filter_chains: { filters: { typed_config: { http_filters?: { name: string }[] } }[] }[] }[] } };
    for (const l of doc.static_resources.listeners)
      for (const fc of l.filter_chains)
        for (const f of fc.filters) if (f.typed_config.http_filters) f.typed_config.http_filters = f.typed_config.http_filters.filter((h) => h.name !== 'envoy.filters.http.ext_authz');
    config = toYaml(doc);
  }
  const path = join(opts.dir, `envoy-${opts.name}.yaml`);
  await writeFile(path, config);
  const proc = await startEnvoy({ configPath: path, logDir: opts.dir, adminPort: admin, name: `envoy-${opts.name}`, concurrency: opts.workers });
  return { url: `http://127.0.0.1:${http}/v1/tools/echo`, proc, adminPort: admin, accessLogPath };
}

async function startToolgate(dir: string, name: string, policy: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = [], tls?: InternalCredentials, extra: Record<string, unknown> = {}): Promise<{ grpcPort: number; proc: ManagedProcess }> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const configPath = join(dir, `authz-${name}.yaml`);
  // As deployed: each allowed call is attested for the executor (an HMAC over the decision and the body).
  const keyPath = join(dir, 'decision.key');
  await writeFile(keyPath, randomBytes(48).toString('base64'));
  await writeFile(
    configPath,
    toYaml({ grpc: { address: `127.0.0.1:${grpcPort}`, ...(tls ? { tls: authzServerTls(tls) } : {}) }, http: { address: `127.0.0.1:${httpPort}` }, catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), policy: { decision: DECISION, ...policy }, decision_key_file: keyPath, ...extra }),
  );
  // Decision log lines go to a file, as they would to a log shipper.
  const proc = startProcess({ name: `authz-${name}`, command: process.execPath, args: [...nodeArgs, join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], env, logDir: dir });
  await waitForHttp(`http://127.0.0.1:${httpPort}/healthz`, { process: proc, timeoutMs: 30_000 });
  return { grpcPort, proc };
}

async function startOpaServer(dir: string, opa: string, bundle: string, name: string): Promise<{ url: string; proc: ManagedProcess }> {
  const port = await freePort();
  const proc = startProcess({ name, command: opa, args: ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', '--bundle', bundle], logDir: dir });
  await waitForHttp(`http://127.0.0.1:${port}/health?bundles`, { process: proc, timeoutMs: 60_000 });
  return { url: `http://127.0.0.1:${port}`, proc };
}

async function startOpaEnvoyPlugin(dir: string, binary: string, bundle: string, name: string): Promise<{ grpcPort: number; proc: ManagedProcess }> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const configPath = join(dir, `${name}.yaml`);
  await writeFile(configPath, toYaml({ plugins: { envoy_ext_authz_grpc: { addr: `127.0.0.1:${grpcPort}`, path: DECISION } }, decision_logs: { console: false } }));
  const proc = startProcess({
    name,
    command: binary,
    args: ['run', '--server', '--addr', `127.0.0.1:${httpPort}`, '--config-file', configPath, '--log-level', 'error', '--bundle', bundle],
    logDir: dir,
  });
  await waitForHttp(`http://127.0.0.1:${httpPort}/health?plugins`, { process: proc, timeoutMs: 60_000 });
  return { grpcPort, proc };
}

/** Starts one configuration with the given bundles (a fresh authorization backend and its Envoy). */
export async function startConfig(name: ConfigName, o: { dir: string; tag: string; creds: DevCredentials; upstreamPort: number; bins: Binaries; bundles: Bundles; toolgateEnv?: NodeJS.ProcessEnv; toolgateNodeArgs?: string[]; envoyWorkers?: EnvoyWorkers; toolgatePolicy?: Record<string, unknown>; toolgateConfig?: Record<string, unknown> }): Promise<RunningConfig> {
  const dir = join(o.dir, `${name}-${o.tag}`);
  await mkdir(dir, { recursive: true });
  const procs: ManagedProcess[] = [];
  let authzPort = 1;
  let authzPids: number[] = [];
  // TOOLGATE_BENCH_AUTHZ_TLS=1: toolgate as the chart deploys it, the Envoy -> authz hop over mutual TLS
  // (the plugin and the floor stay plaintext, so the ratio then includes what TLS costs toolgate).
  const tls = process.env.TOOLGATE_BENCH_AUTHZ_TLS === '1' && (name === 'b' || name === 'c') ? await ensureInternalCredentials(join(o.dir, 'internal')) : undefined;
  if (name === 'b') {
    const t = await startToolgate(dir, 'b', { engine: 'embedded', bundle: { file: o.bundles.wasm }, ...o.toolgatePolicy }, o.toolgateEnv, o.toolgateNodeArgs, tls, o.toolgateConfig);
    procs.push(t.proc);
    [authzPort, authzPids] = [t.grpcPort, [t.proc.pid]];
  } else if (name === 'c') {
    const opa = await startOpaServer(dir, o.bins.opa, o.bundles.rego, 'opa-c');
    const t = await startToolgate(dir, 'c', { engine: 'remote', remote: { url: opa.url, timeout_ms: 2000 } }, o.toolgateEnv, o.toolgateNodeArgs, tls);
    procs.push(t.proc, opa.proc);
    [authzPort, authzPids] = [t.grpcPort, [t.proc.pid, opa.proc.pid]];
  } else if (name === 'd') {
    const p = await startOpaEnvoyPlugin(dir, o.bins.opaEnvoyPlugin, o.bundles.rego, 'opa-envoy-plugin');
    procs.push(p.proc);
    [authzPort, authzPids] = [p.grpcPort, [p.proc.pid]];
  } else if (name === 'e') {
    const port = await freePort();
    const proc = startProcess({ name: 'allow-all-authz', command: process.execPath, args: [join(REPO_ROOT, 'dist', 'bench', 'lib', 'allow-all-authz.js'), String(port)], logDir: dir });
    await waitForTcp(port, { process: proc, timeoutMs: 10_000 });
    procs.push(proc);
    [authzPort, authzPids] = [port, [proc.pid]];
  }
  const envoy = await startFrontEnvoy({ dir, name, creds: o.creds, authzPort, upstreamPort: o.upstreamPort, withExtAuthz: name !== 'a', workers: o.envoyWorkers ?? 'default', ...(tls ? { tls } : {}) });
  procs.unshift(envoy.proc);
  return {
    name,
    url: envoy.url,
    authzPids,
    envoyPid: envoy.proc.pid,
    envoyAdminPort: envoy.adminPort,
    authzPort: name === 'a' ? 0 : authzPort,
    accessLogPath: envoy.accessLogPath,
    stop: async () => {
      for (const p of procs) await p.stop();
    },
  };
}
