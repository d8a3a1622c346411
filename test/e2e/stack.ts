import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, readFile, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { ensureDevCredentials, issueAgentCertificate, signAgentJwt, type DevCredentials } from '../../src/gateway/dev-credentials.js';
import { renderEnvoyConfig, type EnvoyTemplateValues } from '../../src/gateway/envoy-template.js';
import { authzServerTls, ensureInternalCredentials, envoyAuthzTlsValues, type InternalCredentials } from '../../src/gateway/internal-credentials.js';
import { loadMcpServersFile } from '../../src/catalog/mcp-servers.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureBubblewrap } from '../../src/toolchain/bubblewrap.js';
import { ensureEnvoy, ensureOpa } from '../../src/toolchain/install.js';
import { startEchoUpstream } from '../support/echo-upstream.js';
import { startEnvoy } from '../support/envoy-process.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer.js';

/**
 * A whole authorization path on loopback for end-to-end tests: the real Envoy (rendered from
 * envoy/toolgate.yaml), the compiled authz server as its own process, an echo upstream standing in for the
 * executor, and, for the remote engine, a real OPA server.
 */
export type BundleSourceSpec = { file: string } | { url: string; cacheDir: string };

export interface StackOptions {
  engine: 'embedded' | 'remote';
  /** Embedded: where the authz server gets bundles (default: the seed bundle built from policies/). */
  bundle?: BundleSourceSpec;
  /** Remote: the bundle OPA serves from (default: the seed bundle). */
  remoteBundle?: string;
  /** Remote: point the authz server at this URL instead of starting OPA. */
  remoteUrl?: string;
  maxRequestBytes?: number;
  /** What Envoy routes tool calls to: the echo upstream (default) or the real executor with a runner. */
  executor?: 'echo' | 'local' | 'kubernetes';
  /** Kubernetes runner settings (executor: 'kubernetes'); instance: the executor's POD_NAME (default: none, the hostname). */
  kube?: {
    kubeconfig: string;
    namespace: string;
    instance?: string;
    /** The runner image and the command in it (test/support/kube/real-node.ts builds and imports it). */
    image: string;
    command: string[];
    /** Where pods reach this host (the node's bridge address): the result channel listens there, alone. */
    callbackHost: string;
  };
  /** Tool catalog for the authz server and the executor (default src/catalog/tools.yaml). */
  catalogPath?: string;
  /** Executor: calls in flight before 429. */
  maxInFlight?: number;
  /** Executor: calls in flight per agent before 429 (default: the executor's default, a quarter of maxInFlight). */
  maxInFlightPerAgent?: number;
  /** OTLP/gRPC endpoint of a collector: turns on tracing in Envoy, the authz server, the executor and Jobs. */
  otlpEndpoint?: string;
  /** Hash-chained audit trails (authz: refusals; executor: calls run) under the stack's directory. */
  audit?: boolean;
  /**
   * Executor processes behind Envoy (default 1). With more, Jobs post results through a balancer standing in
   * for the executor Service (result_url), and replica i > 0 is named `<kube.instance>-<i>`.
   */
  executorReplicas?: number;
  /** Extra keys of the executor's config file (limits, idempotency...). */
  executorConfig?: Record<string, unknown>;
  /** Extra environment of the executor processes (e.g. NODE_OPTIONS for a measurement). */
  executorEnv?: NodeJS.ProcessEnv;
  /** Envoy's overload and request limits, when a test needs other than the defaults. */
  envoyLimits?: Pick<EnvoyTemplateValues, 'MAX_HEAP_BYTES' | 'MAX_DOWNSTREAM_CONNECTIONS' | 'REQUEST_HEADERS_TIMEOUT' | 'REQUEST_TIMEOUT' | 'CONNECTION_BUFFER_BYTES'>;
  /** Policy lifecycle: extra keys merged into the authz config (e.g. policy.bundle.signing, decision_logs). */
  editAuthzConfig?: (config: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
  /** MCP: the upstream MCP server registry (authz field mapping and credentials, Envoy routes and clusters). */
  mcpServersPath?: string;
  /** Extra environment of the authz server (e.g. upstream MCP credentials named by value_env). */
  authzEnv?: Record<string, string>;
  /** Local runner: its sandbox pool (the executor config's runner.pool); default none. */
  sandboxPool?: { size?: number; tools?: Record<string, number>; max_total?: number };
  /** Approvals (issue 18): the authz process's approvers' port behind Envoy's /approvals/ route. */
  approvals?: { ttlSeconds?: number };
  /** input.history (and approvals) in this Redis (test/support/redis.ts) for the authz server and the executor; default in-process. */
  redisUrl?: string;
}

/** The approvers' token audience and group in the stack (approvals). */
export const APPROVALS_AUDIENCE = 'toolgate-approvals';
export const APPROVERS_GROUP = 'toolgate-approvers';

/** One executor process of the stack. */
export interface ExecutorReplica {
  /** Its POD_NAME (the label on its Jobs), when set. */
  instance: string | undefined;
  port: number;
  opsPort: number;
  /** Its result listener (runner.callback_address), on the node's bridge address. */
  callbackPort: number;
  process: ManagedProcess | undefined;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
}

export interface CallOptions {
  jwt?: string;
  cert?: { certPath: string; keyPath: string };
  headers?: Record<string, string>;
  method?: string;
  rawBody?: Buffer | string;
}

export interface Stack {
  dir: string;
  creds: DevCredentials;
  /** The internal CA and the Envoy <-> authz certificates (the authz port answers only Envoy's). */
  internal: InternalCredentials;
  authzGrpcPort: number;
  envoyHttpPort: number;
  envoyMtlsPort: number;
  envoyAdminPort: number;
  authzHttpPort: number;
  accessLogPath: string;
  authzAuditPath: string | undefined;
  executorAuditPath: string | undefined;
  authz: ManagedProcess;
  executor: ManagedProcess | undefined;
  executorOpsPort: number | undefined;
  executorPort: number;
  /** Restarts the executor process (same config), e.g. to show reconciliation. */
  restartExecutor(opts?: { kill?: boolean }): Promise<void>;
  /** Every executor replica (executorReplicas); the first is `executor` above. */
  executors: ExecutorReplica[];
  /** SIGKILLs replica i (no restart). */
  killExecutor(i: number): Promise<void>;
  /** Starts replica i again (same config and name) after killExecutor. */
  startExecutor(i: number): Promise<void>;
  upstream: Awaited<ReturnType<typeof startEchoUpstream>>;
  call(path: string, body: unknown, opts?: CallOptions): Promise<Response>;
  jwtFor(sub: string, extra?: Record<string, unknown>): Promise<string>;
  /** An approver's token (approvals): audience APPROVALS_AUDIENCE, groups as given (default: the approvers' group). */
  approverJwtFor(sub: string, groups?: string[]): Promise<string>;
  /** The approvers' port of the authz process (approvals), when on. */
  approvalsPort: number | undefined;
  certFor(spiffeId: string, name: string): Promise<{ certPath: string; keyPath: string }>;
  restartAuthz(): Promise<void>;
  stopAuthz(): Promise<void>;
  stop(): Promise<void>;
}

export const SEED_REVISION = 'seed-e2e';

/** Builds a wasm bundle from a policy directory (default policies/) with the given revision. */
export async function buildSeedBundle(dir: string, revision = SEED_REVISION, sourceDir = join(REPO_ROOT, 'policies'), target: 'wasm' | 'rego' = 'wasm'): Promise<string> {
  const outFile = join(dir, `bundle-${revision}-${target}.tar.gz`);
  await buildBundle({ opaPath: await ensureOpa(), sourceDir, outFile, revision, target });
  return outFile;
}

/** Copies policies/ and replaces data.json, for bundles that differ only in data. */
export async function policiesWithData(dir: string, name: string, data: unknown): Promise<string> {
  const target = join(dir, name);
  await mkdir(target, { recursive: true });
  await cp(join(REPO_ROOT, 'policies'), target, { recursive: true });
  await writeFile(join(target, 'data.json'), JSON.stringify(data));
  return target;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-e2e-'));
  const logDir = join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  const [, creds] = await Promise.all([ensureEnvoy(), ensureDevCredentials(join(dir, 'creds'))]);
  const internal = await ensureInternalCredentials(join(dir, 'creds', 'internal'));
  const upstream = await startEchoUpstream();
  const processes: ManagedProcess[] = [];

  let remoteUrl = opts.remoteUrl;
  if (opts.engine === 'remote' && !remoteUrl) {
    const opaPort = await freePort();
    const bundle = opts.remoteBundle ?? (await buildSeedBundle(dir, SEED_REVISION, join(REPO_ROOT, 'policies'), 'rego'));
    const opa = startProcess({
      name: 'opa',
      command: await ensureOpa(),
      args: ['run', '--server', '--addr', `127.0.0.1:${opaPort}`, '--log-level', 'error', '--bundle', bundle],
      logDir,
    });
    processes.push(opa);
    remoteUrl = `http://127.0.0.1:${opaPort}`;
    await waitForHttp(`${remoteUrl}/health?bundles`, { process: opa, timeoutMs: 30_000 });
  }

  const [authzGrpcPort, authzHttpPort] = [await freePort(), await freePort()];
  const approvalsPort = opts.approvals ? await freePort() : undefined;
  // The Envoy ports are chosen here: the approvals' public URL names the JWT listener.
  const [envoyHttpPort, envoyMtlsPort, envoyAdminPort] = [await freePort(), await freePort(), await freePort()];
  const bundle = opts.bundle ?? (opts.engine === 'embedded' ? { file: await buildSeedBundle(dir) } : undefined);
  const authzConfig = {
    grpc: { address: `127.0.0.1:${authzGrpcPort}`, tls: authzServerTls(internal) },
    http: { address: `127.0.0.1:${authzHttpPort}` },
    catalog: opts.catalogPath ?? join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
    policy: {
      engine: opts.engine,
      decision: 'agent/authz',
      ...(bundle && 'file' in bundle ? { bundle: { file: bundle.file, poll_interval_ms: 200 } } : {}),
      ...(bundle && 'url' in bundle ? { bundle: { url: bundle.url, cache_dir: bundle.cacheDir, poll_min_seconds: 0.2, poll_max_seconds: 0.4, timeout_ms: 2000 } } : {}),
      ...(opts.engine === 'remote' ? { remote: { url: remoteUrl, timeout_ms: 1000 } } : {}),
    },
    decision_key_file: creds.decisionKeyPath,
    ...(opts.mcpServersPath ? { mcp_servers: opts.mcpServersPath } : {}),
    ...(opts.approvals && approvalsPort
      ? {
          approvals: {
            address: `127.0.0.1:${approvalsPort}`,
            public_url: `http://127.0.0.1:${envoyHttpPort}/approvals/`,
            ttl_seconds: opts.approvals.ttlSeconds ?? 900,
            approvers: { group: APPROVERS_GROUP, jwks_file: creds.jwksPath, issuer: creds.jwtIssuer, audiences: [APPROVALS_AUDIENCE] },
          },
        }
      : {}),
    ...(opts.redisUrl ? { store: { redis_url: opts.redisUrl } } : {}),
  };
  const authzAuditPath = opts.audit ? join(dir, 'audit-authz.jsonl') : undefined;
  const executorAuditPath = opts.audit && opts.executor && opts.executor !== 'echo' ? join(dir, 'audit-executor.jsonl') : undefined;
  if (authzAuditPath) Object.assign(authzConfig, { audit: { path: authzAuditPath } });
  opts.editAuthzConfig?.(authzConfig);
  const tracingEnv = opts.otlpEndpoint ? { OTEL_EXPORTER_OTLP_ENDPOINT: opts.otlpEndpoint } : {};
  const authzConfigPath = join(dir, 'authz.yaml');
  await writeFile(authzConfigPath, toYaml(authzConfig));

  const startAuthzProcess = async (): Promise<ManagedProcess> => {
    const p = startProcess({
      name: 'authz',
      command: process.execPath,
      args: [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', authzConfigPath],
      env: { ...tracingEnv, ...opts.authzEnv },
      logDir,
    });
    // /healthz: the embedded engine listens only once its bundle is active; a remote OPA may be down on purpose.
    await waitForHttp(`http://127.0.0.1:${authzHttpPort}/healthz`, { process: p, timeoutMs: 30_000 });
    return p;
  };
  let authz = await startAuthzProcess();

  let executorPort = upstream.port;
  let executorOpsPort: number | undefined;
  const executors: ExecutorReplica[] = [];
  const startExecutorAt: (() => Promise<ManagedProcess>)[] = [];
  let resultBalancer: TcpBalancer | undefined;
  if (opts.executor === 'local' || opts.executor === 'kubernetes') {
    // The local runner needs bubblewrap (the executor refuses to start without it); a fresh machine has none.
    if (opts.executor === 'local') await ensureBubblewrap();
    const replicas = opts.executorReplicas ?? 1;
    for (let i = 0; i < replicas; i++) {
      const instance = opts.kube?.instance ? (i === 0 ? opts.kube.instance : `${opts.kube.instance}-${i}`) : undefined;
      executors.push({ instance, port: await freePort(), opsPort: await freePort(), callbackPort: await freePort(), process: undefined });
    }
    // As the executor Service would: Jobs post results to any replica that is up (on the node's bridge, where pods reach it).
    if (replicas > 1 && opts.kube) resultBalancer = await startTcpBalancer(() => executors.map((e) => e.callbackPort), opts.kube.callbackHost);
    for (const [i, replica] of executors.entries()) {
      const executorConfigPath = join(dir, i === 0 ? 'executor.yaml' : `executor-${i}.yaml`);
      await writeFile(
        executorConfigPath,
        toYaml({
          http: { address: `127.0.0.1:${replica.port}` },
          ops: { address: `127.0.0.1:${replica.opsPort}` },
          catalog: opts.catalogPath ?? join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
          max_body_bytes: opts.maxRequestBytes ?? 2 * 1024 * 1024,
          max_in_flight: opts.maxInFlight ?? 16,
        ...(opts.maxInFlightPerAgent ? { max_in_flight_per_agent: opts.maxInFlightPerAgent } : {}),
          decision_key_file: creds.decisionKeyPath,
          ...(opts.redisUrl ? { store: { redis_url: opts.redisUrl } } : {}),
          ...(executorAuditPath ? { audit: { path: i === 0 ? executorAuditPath : `${executorAuditPath}.${i}` } } : {}),
          ...opts.executorConfig,
          runner:
            opts.executor === 'kubernetes' && opts.kube
              ? {
                  kind: 'kubernetes',
                  namespace: opts.kube.namespace,
                  image: opts.kube.image,
                  command: opts.kube.command,
                  // The result listener alone on the node's bridge address: pods reach it, and only it.
                  callback_url: `http://${opts.kube.callbackHost}:${replica.callbackPort}`,
                  callback_address: `${opts.kube.callbackHost}:${replica.callbackPort}`,
                  ...(resultBalancer ? { result_url: `http://${opts.kube.callbackHost}:${resultBalancer.port}` } : {}),
                  ttl_seconds_after_finished: 30,
                  default_service_account: 'toolgate-tool-default',
                  kubeconfig: opts.kube.kubeconfig,
                  ...(opts.otlpEndpoint ? { otel_exporter_otlp_endpoint: opts.otlpEndpoint } : {}),
                }
              : { kind: 'local', ...(opts.sandboxPool ? { pool: opts.sandboxPool } : {}) },
        }),
      );
      // As the downward API would set it in a cluster: the name its Jobs are labelled with.
      const executorEnv = { ...tracingEnv, ...opts.executorEnv, ...(replica.instance ? { POD_NAME: replica.instance } : {}) };
      startExecutorAt[i] = async () => {
        const p = startProcess({ name: i === 0 ? 'executor' : `executor-${i}`, command: process.execPath, args: [join(REPO_ROOT, 'dist', 'src', 'executor', 'main.js'), '--config', executorConfigPath], env: executorEnv, logDir });
        await waitForHttp(`http://127.0.0.1:${replica.opsPort}/healthz`, { process: p, timeoutMs: 30_000 });
        return p;
      };
    }
    for (const [i, replica] of executors.entries()) replica.process = await (startExecutorAt[i] as () => Promise<ManagedProcess>)();
    [executorPort, executorOpsPort] = [executors[0]?.port as number, executors[0]?.opsPort];
  }

  const accessLogPath = join(dir, 'access.log');
  const envoyConfigPath = join(dir, 'envoy.yaml');
  await writeFile(
    envoyConfigPath,
    await renderEnvoyConfig({
      ADMIN_PORT: envoyAdminPort,
      LISTEN_ADDRESS: '127.0.0.1',
      HTTP_PORT: envoyHttpPort,
      MTLS_PORT: envoyMtlsPort,
      AUTHZ_HOST: '127.0.0.1',
      AUTHZ_PORT: authzGrpcPort,
      AUTHZ_TIMEOUT: '2s',
      EXECUTOR_HOST: '127.0.0.1',
      EXECUTOR_PORT: executorPort,
      MAX_REQUEST_BYTES: opts.maxRequestBytes ?? 2 * 1024 * 1024,
      TLS_CERT_PATH: creds.serverCertPath,
      TLS_KEY_PATH: creds.serverKeyPath,
      CLIENT_CA_PATH: creds.caCertPath,
      JWKS_PATH: creds.jwksPath,
      JWT_ISSUER: creds.jwtIssuer,
      JWT_AUDIENCE: creds.jwtAudience,
      ACCESS_LOG_PATH: accessLogPath,
      AUTHZ_HEALTH_CHECKS: true,
      ...envoyAuthzTlsValues(internal),
      ...opts.envoyLimits,
      ...(opts.otlpEndpoint ? { TRACING: true, OTEL_COLLECTOR_HOST: new URL(opts.otlpEndpoint).hostname, OTEL_COLLECTOR_PORT: Number(new URL(opts.otlpEndpoint).port) } : {}),
      ...(opts.mcpServersPath ? { MCP_SERVERS: (await loadMcpServersFile(opts.mcpServersPath)).all() } : {}),
      ...(approvalsPort ? { APPROVALS: true, APPROVALS_HOST: '127.0.0.1', APPROVALS_PORT: approvalsPort, APPROVALS_AUDIENCE } : {}),
    }),
  );
  if (executors.length > 1) await writeFile(envoyConfigPath, withExecutorEndpoints(await readFile(envoyConfigPath, 'utf8'), executorPort, executors.map((e) => e.port)));
  const envoy = await startEnvoy({ configPath: envoyConfigPath, logDir, adminPort: envoyAdminPort });
  processes.push(envoy);

  const call = (path: string, body: unknown, o: CallOptions = {}): Promise<Response> => {
    const payload = o.rawBody ?? (body === undefined ? '' : JSON.stringify(body));
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...o.headers };
    if (o.jwt) headers.authorization = `Bearer ${o.jwt}`;
    return new Promise<Response>((resolve, reject) => {
      const onResponse = (res: import('node:http').IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      };
      const common = { host: '127.0.0.1', path, method: o.method ?? 'POST', headers };
      const req = o.cert
        ? httpsRequest(
            {
              ...common,
              port: envoyMtlsPort,
              ca: readFileSyncCached(creds.caCertPath),
              cert: readFileSyncCached(o.cert.certPath),
              key: readFileSyncCached(o.cert.keyPath),
              servername: 'localhost',
              agent: false,
            },
            onResponse,
          )
        : httpRequest({ ...common, port: envoyHttpPort, agent: false }, onResponse);
      req.on('error', reject);
      req.end(payload);
    });
  };

  return {
    dir,
    creds,
    internal,
    authzGrpcPort,
    envoyHttpPort,
    envoyMtlsPort,
    envoyAdminPort,
    authzHttpPort,
    accessLogPath,
    authzAuditPath,
    executorAuditPath,
    get authz() {
      return authz;
    },
    get executor() {
      return executors[0]?.process;
    },
    executors,
    killExecutor: async (i) => {
      const p = executors[i]?.process;
      if (!p) throw new Error(`no executor replica ${i}`);
      process.kill(p.pid, 'SIGKILL');
      await p.exited;
      await p.stop();
    },
    startExecutor: async (i) => {
      const replica = executors[i];
      const start = startExecutorAt[i];
      if (!replica || !start) throw new Error(`no executor replica ${i}`);
      replica.process = await start();
    },
    executorOpsPort,
    executorPort,
    restartExecutor: async (o = {}) => {
      const first = executors[0];
      const start = startExecutorAt[0];
      if (!first?.process || !start) throw new Error('no executor in this stack');
      if (o.kill) {
        process.kill(first.process.pid, 'SIGKILL');
        await first.process.exited;
      }
      await first.process.stop();
      first.process = await start();
    },
    upstream,
    call,
    jwtFor: (sub, extra = {}) => signAgentJwt(creds, { sub, ...extra }),
    approverJwtFor: (sub, groups = [APPROVERS_GROUP]) => signAgentJwt(creds, { sub, groups }, { audience: APPROVALS_AUDIENCE }),
    approvalsPort,
    certFor: (spiffeId, name) => issueAgentCertificate(creds, spiffeId, name),
    restartAuthz: async () => {
      await authz.stop();
      authz = await startAuthzProcess();
      // Envoy routes checks to the new process once its health check passes (within a second or two).
      await waitForHealthyAuthz(envoyAdminPort);
    },
    stopAuthz: () => authz.stop(),
    stop: async () => {
      for (const e of executors) await e.process?.stop();
      await resultBalancer?.close();
      await authz.stop();
      for (const p of processes.reverse()) await p.stop();
      await upstream.close();
    },
  };
}

const fileCache = new Map<string, Buffer>();
function readFileSyncCached(path: string): Buffer {
  let b = fileCache.get(path);
  if (!b) {
    b = readFileSync(path);
    fileCache.set(path, b);
  }
  return b;
}

export async function readAccessLog(stack: Stack): Promise<Record<string, string>[]> {
  const text = await readFile(stack.accessLogPath, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, string>);
}

/** Until Envoy's authz cluster has a host that passed its gRPC health check (there may be none while the authz server is down). */
export async function waitForHealthyAuthz(adminPort: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const text = await fetch(`http://127.0.0.1:${adminPort}/clusters`).then((r) => r.text(), () => '');
    const flags = text.split('\n').filter((l) => l.startsWith('toolgate_authz::') && l.includes('::health_flags::'));
    if (flags.some((l) => l.endsWith('::healthy'))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('Envoy did not see a healthy authz server in time');
}

/** Envoy's executor cluster with one endpoint per replica (the rendered config has the first one's). */
function withExecutorEndpoints(config: string, firstPort: number, ports: number[]): string {
  // Both executor clusters (executor for REST, executor_mcp for /mcp) list every replica.
  const one = new RegExp(`^( *)- endpoint:\\n +address:\\n +socket_address: \\{ address: 127\\.0\\.0\\.1, port_value: ${firstPort} \\}$`, 'gm');
  if (!one.test(config)) throw new Error('stack: no executor endpoint in the rendered Envoy config');
  const endpoint = (indent: string, port: number): string => `${indent}- endpoint:\n${indent}    address:\n${indent}      socket_address: { address: 127.0.0.1, port_value: ${port} }`;
  return config.replace(one, (_m, indent: string) => ports.map((p) => endpoint(indent, p)).join('\n'));
}
