import { readFile } from 'node:fs/promises';
import type { BundleSource } from './bundle/bundle-source.js';
import type { PolicyBundle } from './bundle/bundle.js';
import { loadToolCatalogFile, type ToolCatalog } from '../catalog/tool-catalog.js';
import { EMPTY_MCP_SERVERS, loadMcpServersFile } from '../catalog/mcp-servers.js';
import { loadUpstreamCredentials } from './upstream-credentials.js';
import { ToolsListFilter } from './mcp-lists/tools-list-filter.js';
import { isListingAnswer, UpstreamAnswerGuard } from './mcp-lists/upstream-answer-guard.js';
import { createLogger, errorMessage, type Logger } from '../shared/logger.js';
import type { Tracing } from '../shared/tracing.js';
import { loadAttestationKey } from '../shared/decision-attestation.js';
import { openAuditTrail } from '../audit/audit-config.js';
import { startOpsServer, type OpsServer } from '../shared/http-endpoints.js';
import { CheckService } from './check-service.js';
import type { AuthzConfig } from './config.js';
import { bundleSourceFor, signatureVerifier, startEmbeddedPolicy } from './embedded-policy.js';
import { ShadowPolicy } from './shadow/shadow-policy.js';
import { WasmPolicyEngine } from './policy/wasm-engine.js';
import { startDecisionLogShipping, type DecisionLogShipping } from './observability/decision-log-shipping.js';
import type { RecordedInputs } from './bundle/pre-activation.js';
import type { DecisionObserver } from './check-service.js';
import { HealthService } from './grpc/health-service.js';
import type { ServerTls } from './grpc/http2-listener.js';
import { AuthzMetrics } from './observability/metrics.js';
import type { PolicyEngine } from './policy/policy-engine.js';
import { RemoteOpaEngine } from './policy/remote-engine.js';
import { startGrpcServer, type AuthzGrpcServer } from './server.js';
import { closeStore, connectStore } from '../shared/store/redis-connection.js';
import { redactedRedisUrl, resolveStoreConfig } from '../shared/store/store-config.js';
import { resolveHistoryConfig } from './history/history-config.js';
import { HistoryMetrics } from './history/history-metrics.js';
import { MemoryHistoryStore } from './history/memory-history-store.js';
import { PolicyHistory } from './history/policy-history.js';
import { RedisHistoryStore } from './history/redis-history-store.js';
import { startApprovals, type RunningApprovals } from './approvals/start-approvals.js';
import { MemoryApprovalStore } from './approvals/memory-approval-store.js';
import { RedisApprovalStore } from './approvals/redis-approval-store.js';
import { ApprovalMetrics } from './approvals/approval-metrics.js';

export interface RunningAuthz {
  grpcPort: number;
  httpPort: number;
  metrics: AuthzMetrics;
  /** Ends an allowed call in input.history's calls in flight (an executor in the same process calls it). */
  callEnded(agentId: string, decisionId: string): void;
  stop(): Promise<void>;
}

/** Wires config -> catalog, engine (+ bundle source), check service, gRPC and ops servers. */
export async function startAuthz(config: AuthzConfig, log: Logger = createLogger('authz'), tracing?: Tracing): Promise<RunningAuthz> {
  const metrics = new AuthzMetrics();
  const catalog = await loadToolCatalogFile(config.catalog);
  const servers = config.mcp_servers ? await loadMcpServersFile(config.mcp_servers) : EMPTY_MCP_SERVERS;
  const upstreamCredentials = await loadUpstreamCredentials(servers);
  const health = new HealthService();
  // Decision logs in OPA's format follow the active bundle (its mask rule), so they start first.
  const shipping = config.decision_logs ? startDecisionLogShipping(config, metrics, log) : undefined;
  const { engine, source, stopProbe, recordedInputs } = await startEngine(config, metrics, health, log, shipping, catalog);
  const shadow = config.policy.shadow ? startShadow(config, metrics, log) : undefined;
  if (!config.decision_key_file) {
    // Fine in front of another upstream; in front of toolgate's executor every allowed call would be refused.
    log.warn('no decision_key_file: allowed tool calls carry no attestation, and toolgate\'s executor refuses such calls');
  }

  // The shared store (Redis) or this process's memory: input.history (and approvals) live there.
  const storeConfig = config.store ?? resolveStoreConfig(undefined);
  const historyConfig = config.history ?? resolveHistoryConfig(undefined);
  const store = await connectStore(storeConfig, log.child('store'));
  const windows = { shortMs: historyConfig.windows_ms['1m'], longMs: historyConfig.windows_ms['1h'] };
  const historyStore = store
    ? new RedisHistoryStore(store, { keyPrefix: storeConfig.key_prefix, windows, maxEntries: historyConfig.max_entries_per_series, describe: redactedRedisUrl(storeConfig.redis_url as string) })
    : new MemoryHistoryStore(windows, { maxEntriesPerSeries: historyConfig.max_entries_per_series, maxSeries: 100_000 });
  const history = new PolicyHistory(historyStore, engine, historyConfig, storeConfig.command_timeout_ms, new HistoryMetrics(metrics.registry), log.child('history'));
  // Approvals (issue 18): the store, the approvers' endpoint, and the gate the check path holds calls at.
  const audit = config.audit ? await openAuditTrail(config.audit, log) : undefined;
  const decisionKey = config.decision_key_file ? await loadAttestationKey(config.decision_key_file) : undefined;
  let approvals: RunningApprovals | undefined;
  if (config.approvals) {
    // One replica's memory without a store; with Redis every replica shares them and they survive restarts.
    // Bounded by at least 500 ms: a rare path (calls that need an approval, the approvers' page), not the hot one.
    const approvalStore = store
      ? new RedisApprovalStore(store, { keyPrefix: storeConfig.key_prefix, timeoutMs: Math.max(storeConfig.command_timeout_ms, 500), describe: redactedRedisUrl(storeConfig.redis_url as string) })
      : new MemoryApprovalStore();
    approvals = await startApprovals({ config: config.approvals, store: approvalStore, metrics: new ApprovalMetrics(metrics.registry), log: log.child('approvals'), ...(audit ? { audit } : {}), ...(decisionKey ? { decisionKey } : {}) });
  }

  const checkService = new CheckService({
    history,
    mapper: {
      catalog,
      servers,
      identity: {
        jwtMetadataNamespace: config.identity.jwt_metadata_namespace,
        jwtPayloadKeys: config.identity.jwt_payload_keys,
        agentIdClaim: config.identity.agent_id_claim,
      },
    },
    engine,
    upstreamCredentials,
    metrics,
    log,
    decisionLog: log.child('decision'),
    ...observersOf(recordedInputs, shipping, shadow),
    ...(tracing ? { tracing } : {}),
    ...(audit ? { audit } : {}),
    ...(decisionKey ? { attestationKey: decisionKey } : {}),
    ...(approvals ? { approvals: approvals.gate } : {}),
  });

  let grpcServer: AuthzGrpcServer | undefined;
  let ops: OpsServer | undefined;
  try {
    const toolsListFilter = new ToolsListFilter({ engine, servers, log: log.child('mcp-lists') });
    const answerGuard = new UpstreamAnswerGuard(log.child('mcp-answers'));
    // One ext_proc service: a tools/list answer (its decision carries the listing question) is filtered, any
    // other upstream answer checked.
    const mcpAnswers = { process: async (req: Parameters<ToolsListFilter['process']>[0]) => (isListingAnswer(req) ? toolsListFilter.process(req) : answerGuard.process(req)) };
    grpcServer = await startGrpcServer({
      address: config.grpc.address,
      checkService,
      health,
      log,
      mcpAnswers,
      maxConcurrentStreams: config.grpc.max_concurrent_streams,
      keepalive: { intervalMs: config.grpc.keepalive.interval_ms, timeoutMs: config.grpc.keepalive.timeout_ms },
      ...(config.grpc.tls ? { tls: await loadServerTls(config.grpc.tls) } : {}),
    });
    ops = await startOpsServer({
      address: config.http.address,
      registry: metrics.registry,
      ready: () => engine.ready(),
      status: () => ({ engine: engine.kind, decision: engine.decisionPath, bundle: source?.status(), ...(shadow ? { shadow: shadow.status() } : {}) }),
    });
  } catch (err) {
    await closeStore(store);
    await grpcServer?.shutdown(0);
    await approvals?.stop();
    await source?.stop();
    await shadow?.stop();
    stopProbe();
    throw err;
  }
  log.info('authz server listening', { grpc_port: grpcServer.port, http_port: ops.port, engine: engine.kind, decision: engine.decisionPath, tools: catalog.names().length, history_store: historyStore.describe });

  const g = grpcServer;
  const o = ops;
  return {
    grpcPort: g.port,
    httpPort: o.port,
    metrics,
    callEnded: (agentId, decisionId) => {
      historyStore.finish(agentId, decisionId).catch((err: unknown) => log.warn('could not end a call in flight in the history store', { decision_id: decisionId, cause: errorMessage(err) }));
    },
    stop: async () => {
      // Drain: NOT_SERVING first, and keep answering while Envoy's health checks move traffic to the other
      // replicas; only then GOAWAY, so no check is refused for want of a server (only those in flight
      // past the grace are cut).
      // (The bundle source stops first: an activation would report SERVING again.)
      stopProbe();
      await source?.stop();
      health.setServing(false);
      if (config.grpc.drain_delay_ms > 0) {
        log.info('draining: NOT_SERVING, still answering', { drain_delay_ms: config.grpc.drain_delay_ms });
        await new Promise((r) => setTimeout(r, config.grpc.drain_delay_ms));
      }
      await g.shutdown(config.grpc.shutdown_grace_ms);
      await shipping?.stop();
      await shadow?.stop();
      await o.close();
      await approvals?.stop();
      await engine.close();
      await historyStore.close();
      await closeStore(store);
    },
  };
}

async function loadServerTls(tls: NonNullable<AuthzConfig['grpc']['tls']>): Promise<ServerTls> {
  const [cert, key, clientCa] = await Promise.all([readFile(tls.cert_file), readFile(tls.key_file), readFile(tls.client_ca_file)]);
  return { cert, key, clientCa, ...(tls.client_names ? { clientNames: tls.client_names } : {}) };
}

async function startEngine(
  config: AuthzConfig,
  metrics: AuthzMetrics,
  health: HealthService,
  log: Logger,
  shipping: DecisionLogShipping | undefined,
  catalog: ToolCatalog,
): Promise<{ engine: PolicyEngine; source: BundleSource | undefined; stopProbe: () => void; recordedInputs?: RecordedInputs }> {
  const decision = config.policy.decision;
  if (config.policy.engine === 'remote') {
    const remote = config.policy.remote as NonNullable<AuthzConfig['policy']['remote']>;
    const engine = new RemoteOpaEngine({
      url: remote.url,
      decisionPath: decision,
      timeoutMs: remote.timeout_ms,
      strictBuiltinErrors: config.policy.strict_builtin_errors,
      ...(remote.token ? { token: remote.token } : {}),
    });
    // OPA may still be loading its bundles: probe until ready, then keep probing for health.
    const probe = async (): Promise<void> => {
      health.setServing(await engine.probe());
    };
    await probe();
    if (!engine.ready()) log.warn('remote OPA not ready yet; checks fail closed until it is', { url: remote.url });
    const timer = setInterval(() => void probe(), 2000);
    timer.unref();
    return { engine, source: undefined, stopProbe: () => clearInterval(timer) };
  }

  const { engine, source, recordedInputs } = await startEmbeddedPolicy(config, { metrics, health, log, catalog, ...(shipping ? { alsoActivate: (b) => shipping.mask.activate(b) } : {}) });
  return { engine, source, stopProbe: () => undefined, recordedInputs };
}

const MAX_RECORDED_INPUT_BYTES = 64 * 1024;

/** What runs after each answer has left: recording inputs for pre-activation checks, shipping decision logs. */
function observersOf(recordedInputs: RecordedInputs | undefined, shipping: DecisionLogShipping | undefined, shadow: ShadowPolicy | undefined): { onDecided?: DecisionObserver } {
  const observers: DecisionObserver[] = [];
  if (recordedInputs) {
    // Inputs the active bundle decided: each candidate bundle must decide them too before activation.
    observers.push((record, input, _result, json) => {
      // Bounded in count (one per tool and outcome) and in size: a 2 MiB body is not kept for later.
      if (input && record.result !== 'error' && (json?.byteLength ?? 0) <= MAX_RECORDED_INPUT_BYTES) recordedInputs.record(record.tool, record.allowed, input);
    });
  }
  if (shipping) observers.push(shipping.observe);
  if (shadow) observers.push(shadow.observe);
  if (observers.length === 0) return {};
  if (observers.length === 1) return { onDecided: observers[0] as DecisionObserver };
  return {
    onDecided: (record, input, result, json) => {
      for (const o of observers) o(record, input, result, json);
    },
  };
}

/** The candidate bundle beside the active one: its own source and engine instance, never deciding. */
function startShadow(config: AuthzConfig, metrics: AuthzMetrics, log: Logger): ShadowPolicy {
  const bundle = config.policy.shadow as NonNullable<AuthzConfig['policy']['shadow']>;
  const shadowLog = log.child('shadow');
  const shadow = new ShadowPolicy(new WasmPolicyEngine(config.policy.decision, { strictBuiltinErrors: config.policy.strict_builtin_errors }), bundleSourceFor(bundle, shadowLog), { evaluations: metrics.shadowEvaluations, divergences: metrics.shadowDivergences }, shadowLog);
  shadow.start(signatureVerifier(bundle.signing));
  return shadow;
}
