import { createServer, type Server } from 'node:http';
import { closeStore, connectStore, type RedisConnection } from '../shared/store/redis-connection.js';
import { historyInFlightKey } from '../shared/store/history-keys.js';
import type { StoreConfig } from '../shared/store/store-config.js';
import type { AddressInfo } from 'node:net';
import { loadToolCatalogFile, type ToolCatalog } from '../catalog/tool-catalog.js';
import { startOpsServer, splitHostPort } from '../shared/http-endpoints.js';
import { createLogger, errorMessage, type Logger } from '../shared/logger.js';
import { openAuditTrail } from '../audit/audit-config.js';
import { ATTESTATION_ACCEPT_WINDOW_SECONDS, loadAttestationKey } from '../shared/decision-attestation.js';
import type { Tracing } from '../shared/tracing.js';
import { CallLedger } from './call/call-ledger.js';
import { UsedDecisions } from './call/used-decisions.js';
import { CallTelemetry } from './observability/call-telemetry.js';
import type { ExecutorConfig } from './config.js';
import { sendError } from './http/respond.js';
import { createToolCallHandler } from './http/tool-call-handler.js';
import { startCallbackServer } from './http/callback-server.js';
import { ExecutorMetrics } from './observability/metrics.js';
import { KubeConfig } from '@kubernetes/client-node';
import { executorInstance } from './runners/kubernetes/executor-instance.js';
import { KubernetesJobRunner, kubeApis } from './runners/kubernetes/kubernetes-job-runner.js';
import { findBwrap } from './runners/sandbox/find-bwrap.js';
import { LocalSandboxRunner } from './runners/local-sandbox-runner.js';
import { sandboxPoolSettings } from './local-pool-config.js';
import { SpanRelay } from './observability/span-relay.js';
import { registerSandboxPoolMetrics, type PoolStats } from './observability/sandbox-pool-metrics.js';
import type { Runner } from './runners/runner.js';
import { createMcpEndpoint, isMcpPath } from './mcp/mcp-endpoint.js';
import { McpInFlight } from './mcp/mcp-in-flight.js';
import { McpSessionIds } from './mcp/mcp-session-id.js';
import { packageVersion } from '../shared/repo-paths.js';
import { startWarmPools } from './runners/kubernetes/warm-pool/start-warm-pools.js';

export interface RunningExecutor {
  port: number;
  opsPort: number;
  metrics: ExecutorMetrics;
  stop(): Promise<void>;
}

/** Extra routes a runner may need on the executor's port (the Job runner's result callback). */
export type RouteHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => boolean;

export async function startExecutor(
  config: ExecutorConfig,
  opts: { log?: Logger; runner?: Runner; routes?: RouteHandler[]; tracing?: Tracing; onCallEnded?: (agentId: string, decisionId: string) => void } = {},
): Promise<RunningExecutor> {
  const log = opts.log ?? createLogger('executor');
  const catalog = await loadToolCatalogFile(config.catalog);
  const attestationKey = await loadAttestationKey(config.decision_key_file);
  const metrics = new ExecutorMetrics();
  const created: CreatedRunner = opts.runner ? { runner: opts.runner, routes: [] } : await createRunner(config, log, opts.tracing, attestationKey, catalog);
  const runner = created.runner;
  // The result channel on its own listener when configured (tool pods then never reach the agent-facing port).
  const callbackAddress = config.runner.kind === 'kubernetes' ? config.runner.callback_address : undefined;
  const callbacks = callbackAddress ? await startCallbackServer(callbackAddress, created.routes) : undefined;
  const routes = [...(callbacks ? [] : created.routes), ...(opts.routes ?? [])];
  const audit = config.audit ? await openAuditTrail(config.audit, log) : undefined;
  const ledger = new CallLedger({
    maxInFlight: config.max_in_flight,
    maxInFlightPerAgent: (agent) => config.max_in_flight_by_agent[agent] ?? config.max_in_flight_per_agent,
    retainMs: config.idempotency.retain_seconds * 1000,
    maxRetained: config.idempotency.max_entries,
    maxRetainedBytes: config.idempotency.max_bytes,
  });

  const telemetry = new CallTelemetry({ metrics, tracing: opts.tracing, audit, log });
  // input.history's calls in flight end here: in the shared store, or (one process) as the caller says.
  const store = config.store ? await connectStore(config.store, log.child('store')) : undefined;
  const onCallEnded = opts.onCallEnded ?? (store ? inFlightEnder(store, (config.store as StoreConfig).key_prefix, log) : undefined);
  // One record of accepted decisions for both front ends: an attestation is accepted once, by either.
  const usedDecisions = new UsedDecisions();
  const handle = createToolCallHandler({
    catalog,
    runner,
    ledger,
    maxBodyBytes: config.max_body_bytes,
    log,
    telemetry,
    ...(onCallEnded ? { onCallEnded } : {}),
    onRefused: (tool, httpStatus) => metrics.calls.inc({ tool, outcome: 'refused', http_status: String(httpStatus) }),
    attestationKey,
    usedDecisions,
  });
  // The same call path (catalog, ledger, runner, telemetry) behind a second front end: MCP at /mcp.
  const handleMcp = createMcpEndpoint({
    catalog,
    runner,
    ledger,
    log: log.child('mcp'),
    telemetry,
    ...(onCallEnded ? { onCallEnded } : {}),
    attestationKey,
    usedDecisions,
    maxBodyBytes: config.max_body_bytes,
    sessions: new McpSessionIds(attestationKey),
    inFlight: new McpInFlight(),
    serverInfo: { name: 'toolgate', version: await packageVersion() },
    allowedOrigins: config.mcp.allowed_origins,
  });

  const server: Server = createServer((req, res) => {
    for (const route of routes) if (route(req, res)) return;
    metrics.inFlight.set(ledger.inFlight);
    metrics.retainedBytes.set(ledger.retainedBytes);
    (isMcpPath(req.url) ? handleMcp : handle)(req, res)
      .catch((err: unknown) => {
        // Never lose a call silently: the agent gets a 500 with the cause's class, the operator the cause.
        log.error('call handler failed', { url: req.url, cause: errorMessage(err) });
        sendError(res, 500, 'internal_error', 'the executor failed to handle this call');
      })
      .finally(() => {
        metrics.inFlight.set(ledger.inFlight);
        metrics.retainedBytes.set(ledger.retainedBytes);
      });
  });
  // Calls may legitimately take minutes; Envoy's route timeout is the bound, not Node's defaults.
  server.requestTimeout = 0;
  // Longer than Envoy's idle timeout for this upstream (60 s): Envoy, not Node, closes idle connections, so a
  // call is never sent on a connection Node is closing (Node's default is 5 s; the call would be reset).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const [host, port] = splitHostPort(config.http.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve());
  });
  // The local runner's pool, when it has one: waiting sandboxes in /metrics and in /readyz's status.
  const poolStats = runner instanceof LocalSandboxRunner ? (): PoolStats => runner.poolStats() : undefined;
  if (poolStats) registerSandboxPoolMetrics(metrics.registry, poolStats);
  const status = (): Record<string, unknown> => ({ runner: runner.kind, in_flight: ledger.inFlight, ...(poolStats ? { sandbox_pool: poolStats() } : {}) });
  const ops = await startOpsServer({ address: config.ops.address, registry: metrics.registry, ready: () => true, status });
  const boundPort = (server.address() as AddressInfo).port;
  log.info('executor listening', { port: boundPort, ops_port: ops.port, runner: runner.kind, tools: catalog.names().length });

  return {
    port: boundPort,
    opsPort: ops.port,
    metrics,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await ops.close();
      await callbacks?.close();
      await runner.close();
      await created.close?.();
      await closeStore(store);
    },
  };
}

/** Removes an ended call from its agent's calls in flight (best effort: the entry expires at its deadline anyway). */
function inFlightEnder(store: RedisConnection, keyPrefix: string, log: Logger): (agentId: string, decisionId: string) => void {
  return (agentId, decisionId) => {
    store.zRem(historyInFlightKey(keyPrefix, agentId), decisionId).catch((err: unknown) => log.warn('could not end a call in flight in the history store', { decision_id: decisionId, cause: errorMessage(err) }));
  };
}

interface CreatedRunner {
  runner: Runner;
  routes: RouteHandler[];
  /** What the runner needs stopped with it (the span relay). */
  close?: () => Promise<void>;
}

async function createRunner(config: ExecutorConfig, log: Logger, tracing: Tracing | undefined, sharedKey: Buffer, catalog: ToolCatalog): Promise<CreatedRunner> {
  const r = config.runner;
  if (r.kind === 'local') {
    const bwrapPath = findBwrap();
    const pool = r.pool ? sandboxPoolSettings(r.pool, catalog) : undefined;
    const relay = tracing?.enabled && tracing.endpoint ? await SpanRelay.start(tracing.endpoint, log.child('span-relay')) : undefined;
    const poolLog = log.child('sandbox-pool');
    const runner = new LocalSandboxRunner({
      bwrapPath,
      ...(relay ? { spanSocket: relay.socketPath } : {}),
      ...(pool ? { pool, onPoolEarlyExit: (tool, stderr, retryInMs) => poolLog.warn('a pre-started sandbox exited before any call took it', { tool, stderr: stderr.trim().split('\n').pop() ?? '', retry_in_ms: retryInMs }) } : {}),
    });
    runner.warm(catalog.all());
    if (pool) log.info('sandbox pool', { size: pool.size, tools: pool.tools ?? {}, max_total: pool.maxTotal ?? 0 });
    return { runner, routes: [], ...(relay ? { close: () => relay.close() } : {}) };
  }
  const kubeConfig = new KubeConfig();
  if (r.kubeconfig) kubeConfig.loadFromFile(r.kubeconfig);
  else kubeConfig.loadFromCluster();
  const instance = executorInstance();
  const runner = new KubernetesJobRunner({
    api: kubeApis(kubeConfig),
    instance,
    namespace: r.namespace,
    image: r.image,
    command: r.command,
    callbackBaseUrl: r.callback_url,
    // Run once across replicas: Jobs named after their call, results stored with them (job-identity.ts).
    resultBaseUrl: r.result_url,
    sharedKey,
    idempotencyWindowSeconds: config.idempotency.retain_seconds,
    attestationWindowSeconds: ATTESTATION_ACCEPT_WINDOW_SECONDS,
    ttlSecondsAfterFinished: r.ttl_seconds_after_finished,
    defaultServiceAccount: r.default_service_account,
    ...(r.otel_exporter_otlp_endpoint ? { otelEndpoint: r.otel_exporter_otlp_endpoint } : {}),
    log: log.child('kubernetes'),
  });
  log.info('Kubernetes runner', { instance, callback_url: r.callback_url, result_url: r.result_url, namespace: r.namespace });
  // Nothing waits for Jobs this instance's previous process started: stop the ones still running.
  const orphans = await runner.reconcile().catch((err: unknown) => {
    log.error('could not reconcile Jobs at start', { cause: errorMessage(err) });
    return 0;
  });
  if (orphans > 0) log.warn('deleted orphaned Jobs at start', { count: orphans });
  const pooled = await startWarmPools(r, runner, instance, catalog.all(), log);
  return pooled ?? { runner, routes: [runner.channel.handle] };
}
