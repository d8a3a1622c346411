import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { buildBundle } from '../authz/bundle/build-bundle.js';
import { startAuthz } from '../authz/app.js';
import { parseAuthzConfig } from '../authz/config.js';
import { parseExecutorConfig } from '../executor/config.js';
import { startExecutor } from '../executor/app.js';
import { ensureDevCredentials, issueAgentCertificate, signAgentJwt } from '../gateway/dev-credentials.js';
import { renderEnvoyConfig } from '../gateway/envoy-template.js';
import { authzServerTls, ensureInternalCredentials, envoyAuthzTlsValues } from '../gateway/internal-credentials.js';
import { mcpClientConfig } from '../gateway/mcp-client-config.js';
import { loadMcpServersFile } from '../catalog/mcp-servers.js';
import { createLogger, errorMessage } from '../shared/logger.js';
import { REPO_ROOT } from '../shared/repo-paths.js';
import { startTracing } from '../shared/tracing.js';
import { ensureBubblewrap } from '../toolchain/bubblewrap.js';
import { ensureEnvoy, ensureOpa } from '../toolchain/install.js';

/**
 * `npm run gateway`: the whole gateway on one machine with the embedded defaults — Envoy in front, the
 * authz server with the in-process (WebAssembly) engine on a bundle built from policies/, and the executor
 * with the local sandbox runner. Development credentials (a CA, an agent certificate, a JWT) are generated
 * under .toolgate/ so an agent can call it straight away. With OTEL_EXPORTER_OTLP_ENDPOINT (http://host:port
 * of an OTLP/gRPC collector) every call is one trace: Envoy, the gateway's authz and executor (one process,
 * service toolgate-gateway), and the sandboxed tool runner.
 */
const log = createLogger('gateway');
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const PORTS = {
  http: env('TOOLGATE_HTTP_PORT', 10000),
  mtls: env('TOOLGATE_MTLS_PORT', 10443),
  admin: env('TOOLGATE_ADMIN_PORT', 9901),
  authz: env('TOOLGATE_AUTHZ_PORT', 9191),
  authzOps: env('TOOLGATE_AUTHZ_OPS_PORT', 9464),
  executor: env('TOOLGATE_EXECUTOR_PORT', 9292),
  executorOps: env('TOOLGATE_EXECUTOR_OPS_PORT', 9465),
  approvals: env('TOOLGATE_APPROVALS_PORT', 9466),
};
const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const STATE = process.env.TOOLGATE_STATE_DIR ?? join(REPO_ROOT, '.toolgate');

async function policyRevision(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else hash.update(relative(dir, p)).update(await readFile(p));
    }
  };
  await walk(dir);
  return `policies-${hash.digest('hex').slice(0, 12)}`;
}

/** Envoy's OpenTelemetry tracer needs a plaintext host:port: the one endpoint form all three exporters share. */
function collectorAddress(endpoint: string | undefined): { host: string; port: number } | undefined {
  if (!endpoint) return undefined;
  const m = /^(?:http:\/\/)?([^/:]+):(\d+)\/?$/.exec(endpoint.trim());
  if (!m || endpoint.startsWith('unix:')) throw new Error(`OTEL_EXPORTER_OTLP_ENDPOINT must be http://host:port for npm run gateway (got "${endpoint}")`);
  return { host: m[1] as string, port: Number(m[2]) };
}

async function main(): Promise<void> {
  const collector = collectorAddress(process.env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const tracing = startTracing('toolgate-gateway');
  const [envoyBin, opaBin] = await Promise.all([ensureEnvoy(), ensureOpa(), ensureBubblewrap()]);
  await mkdir(join(STATE, 'logs'), { recursive: true });

  const policiesDir = join(REPO_ROOT, 'policies');
  const revision = await policyRevision(policiesDir);
  const bundlePath = join(STATE, 'bundle.tar.gz');
  await buildBundle({ opaPath: opaBin, sourceDir: policiesDir, outFile: bundlePath, revision });

  const creds = await ensureDevCredentials(join(STATE, 'dev'));
  // The authz port answers only Envoy (mTLS, internal CA): a local process or a sandboxed tool with network
  // cannot ask it for an attested allow.
  const internal = await ensureInternalCredentials(join(STATE, 'dev', 'internal'));
  const agentCert = await issueAgentCertificate(creds, 'spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
  const token = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 24 * 3600 });
  const tokenPath = join(STATE, 'dev', 'ops-bot.jwt');
  await writeFile(tokenPath, token, { mode: 0o600 });
  // MCP clients need a token for this gateway's MCP resource (its audience), not the REST one.
  const mcpResource = `http://127.0.0.1:${PORTS.http}/mcp`;
  const mcpTokenPath = join(STATE, 'dev', 'ops-bot.mcp.jwt');
  const mcpToken = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 24 * 3600, audience: mcpResource });
  await writeFile(mcpTokenPath, mcpToken, { mode: 0o600 });
  // A ready-to-paste MCP client configuration (printed below, and kept next to the tokens).
  const mcpConfig = JSON.stringify(mcpClientConfig(mcpResource, mcpToken));
  const mcpConfigPath = join(STATE, 'dev', 'mcp-client.json');
  await writeFile(mcpConfigPath, `${JSON.stringify(JSON.parse(mcpConfig), null, 2)}\n`, { mode: 0o600 });

  // Approvals (issue 18): a development approver, "alice" in the approvers' group, with a token for the page.
  const approvalsAudience = 'toolgate-approvals';
  const approverTokenPath = join(STATE, 'dev', 'approver-alice.jwt');
  await writeFile(approverTokenPath, await signAgentJwt(creds, { sub: 'alice', groups: ['toolgate-approvers'] }, { expiresInSeconds: 24 * 3600, audience: approvalsAudience }), { mode: 0o600 });

  const catalog = join(REPO_ROOT, 'src', 'catalog', 'tools.yaml');
  // Upstream MCP servers: TOOLGATE_MCP_SERVERS names another registry than the one in the repository.
  const mcpServers = process.env.TOOLGATE_MCP_SERVERS ?? join(REPO_ROOT, 'src', 'catalog', 'mcp-servers.yaml');
  const mcpRegistry = await loadMcpServersFile(mcpServers);
  const authz = await startAuthz(
    parseAuthzConfig(
      JSON.stringify({
        grpc: { address: `127.0.0.1:${PORTS.authz}`, tls: authzServerTls(internal) },
        http: { address: `127.0.0.1:${PORTS.authzOps}` },
        catalog,
        mcp_servers: mcpServers,
        policy: { engine: 'embedded', decision: 'agent/authz', bundle: { file: bundlePath } },
        decision_key_file: creds.decisionKeyPath,
        approvals: {
          address: `127.0.0.1:${PORTS.approvals}`,
          public_url: `http://127.0.0.1:${PORTS.http}/approvals/`,
          approvers: { group: 'toolgate-approvers', jwks_file: creds.jwksPath, issuer: creds.jwtIssuer, audiences: [approvalsAudience] },
        },
      }),
      join(STATE, 'authz.yaml'),
    ),
    log.child('authz'),
    tracing,
  );
  const executor = await startExecutor(
    parseExecutorConfig(
      JSON.stringify({
        http: { address: `127.0.0.1:${PORTS.executor}` },
        ops: { address: `127.0.0.1:${PORTS.executorOps}` },
        catalog,
        max_body_bytes: MAX_REQUEST_BYTES,
        // One sandbox waiting per tool (docs/execution.md "The sandbox pool"): the first thing a user tries
        // answers without paying for a sandbox's start-up; ~8 MB of memory of its own per tool.
        runner: { kind: 'local', pool: { size: 1 } },
        decision_key_file: creds.decisionKeyPath,
      }),
      join(STATE, 'executor.yaml'),
    ),
    // One process, one in-process history store: the executor ends its calls in flight there.
    { log: log.child('executor'), tracing, onCallEnded: (agentId, decisionId) => authz.callEnded(agentId, decisionId) },
  );

  const envoyConfigPath = join(STATE, 'envoy.yaml');
  await writeFile(
    envoyConfigPath,
    await renderEnvoyConfig({
      ADMIN_PORT: PORTS.admin,
      LISTEN_ADDRESS: process.env.TOOLGATE_LISTEN_ADDRESS ?? '127.0.0.1',
      HTTP_PORT: PORTS.http,
      MTLS_PORT: PORTS.mtls,
      AUTHZ_HOST: '127.0.0.1',
      AUTHZ_PORT: authz.grpcPort,
      AUTHZ_TIMEOUT: '0.5s',
      EXECUTOR_HOST: '127.0.0.1',
      EXECUTOR_PORT: executor.port,
      MAX_REQUEST_BYTES,
      TLS_CERT_PATH: creds.serverCertPath,
      TLS_KEY_PATH: creds.serverKeyPath,
      CLIENT_CA_PATH: creds.caCertPath,
      JWKS_PATH: creds.jwksPath,
      JWT_ISSUER: creds.jwtIssuer,
      JWT_AUDIENCE: creds.jwtAudience,
      ACCESS_LOG_PATH: join(STATE, 'logs', 'access.log'),
      AUTHZ_HEALTH_CHECKS: true,
      ...envoyAuthzTlsValues(internal),
      ...(collector ? { TRACING: true, OTEL_COLLECTOR_HOST: collector.host, OTEL_COLLECTOR_PORT: collector.port } : {}),
      MCP_SERVERS: mcpRegistry.all(),
      MCP_RESOURCE_URL: mcpResource,
      APPROVALS: true,
      APPROVALS_HOST: '127.0.0.1',
      APPROVALS_PORT: PORTS.approvals,
      APPROVALS_AUDIENCE: approvalsAudience,
    }),
  );
  const envoy: ChildProcess = spawn(envoyBin, ['-c', envoyConfigPath, '--use-dynamic-base-id', '-l', 'warning', '--file-flush-interval-msec', '1000'], { stdio: ['ignore', 'inherit', 'inherit'] });

  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const envoyGone = new Promise((resolve) => (envoy.exitCode !== null || envoy.signalCode !== null ? resolve(undefined) : envoy.once('exit', resolve)));
    if (envoy.exitCode === null) envoy.kill('SIGTERM');
    await Promise.all([envoyGone, executor.stop(), authz.stop()]);
    await tracing.shutdown().catch(() => undefined);
    process.exit(code);
  };
  envoy.on('exit', (code, signal) => {
    // Envoy stopping because we asked it to is the normal end; any other exit takes the gateway down.
    if (stopping) return;
    log.error('envoy exited', { code, signal });
    void shutdown(1);
  });
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  await waitForEnvoy(PORTS.admin);
  const rel = (p: string): string => relative(process.cwd(), p) || p;
  process.stdout.write(
    [
      '',
      `toolgate is up: Envoy on http://127.0.0.1:${PORTS.http} (JWT) and https://localhost:${PORTS.mtls} (mTLS), policy revision ${revision}.`,
      '',
      'Try it as the agent "ops-bot":',
      `  curl -s -H "authorization: Bearer $(cat ${rel(tokenPath)})" -d '{"message":"hello"}' http://127.0.0.1:${PORTS.http}/v1/tools/echo`,
      `  curl -s --cacert ${rel(creds.caCertPath)} --cert ${rel(agentCert.certPath)} --key ${rel(agentCert.keyPath)} \\`,
      `       -d '{"namespace":"production","name":"api-server"}' https://localhost:${PORTS.mtls}/v1/tools/k8s_get_deployment`,
      '',
      `MCP (Streamable HTTP) at ${mcpResource}: paste this into your MCP client's configuration (also in ${rel(mcpConfigPath)}):`,
      `  ${mcpConfig}`,
      '',
      'A scale to zero in production waits for a person (202 with an approval URL). Approve it as "alice":',
      `  curl -s -H "authorization: Bearer $(cat ${rel(approverTokenPath)})" -H 'content-type: application/json' -d '{"verdict":"approve"}' <the url>`,
      '  (the page at that URL needs the same Authorization header: an identity-aware proxy, or a header extension)',
      '',
      `Metrics: http://127.0.0.1:${PORTS.authzOps}/metrics (authz), http://127.0.0.1:${PORTS.executorOps}/metrics (executor). Ctrl-C stops everything.`,
      '',
    ].join('\n'),
  );
}

async function waitForEnvoy(adminPort: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('envoy did not become ready within 30 s');
}

main().catch((err: unknown) => {
  log.error('gateway failed to start', { cause: errorMessage(err) });
  process.exit(1);
});
