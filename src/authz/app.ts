import type { BundleSource } from './bundle/bundle-source.js';
import { FileBundleSource } from './bundle/file-source.js';
import { HttpBundleSource } from './bundle/http-source.js';
import type { PolicyBundle } from './bundle/bundle.js';
import { loadToolCatalogFile } from '../catalog/tool-catalog.js';
import { EMPTY_MCP_SERVERS, loadMcpServersFile } from '../catalog/mcp-servers.js';
import { loadUpstreamCredentials } from './upstream-credentials.js';
import { ToolsListFilter } from './mcp-lists/tools-list-filter.js';
import { createLogger, errorMessage, type Logger } from '../shared/logger.js';
import type { Tracing } from '../shared/tracing.js';
import { loadAttestationKey } from '../shared/decision-attestation.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { startOpsServer, type OpsServer } from '../shared/http-endpoints.js';
import { CheckService } from './check-service.js';
import type { AuthzConfig } from './config.js';
import { HealthService } from './grpc/health-service.js';
import { AuthzMetrics } from './observability/metrics.js';
import type { PolicyEngine } from './policy/policy-engine.js';
import { RemoteOpaEngine } from './policy/remote-engine.js';
import { WasmPolicyEngine } from './policy/wasm-engine.js';
import { startGrpcServer, type AuthzGrpcServer } from './server.js';

export interface RunningAuthz {
  grpcPort: number;
  httpPort: number;
  metrics: AuthzMetrics;
  stop(): Promise<void>;
}

/** Wires config -> catalog, engine (+ bundle source), check service, gRPC and ops servers. */
export async function startAuthz(config: AuthzConfig, log: Logger = createLogger('authz'), tracing?: Tracing): Promise<RunningAuthz> {
  const metrics = new AuthzMetrics();
  const catalog = await loadToolCatalogFile(config.catalog);
  const servers = config.mcp_servers ? await loadMcpServersFile(config.mcp_servers) : EMPTY_MCP_SERVERS;
  const upstreamCredentials = await loadUpstreamCredentials(servers);
  const health = new HealthService();
  const { engine, source, stopProbe } = await startEngine(config, metrics, health, log);
  if (!config.decision_key_file) {
    // Fine in front of another upstream; in front of toolgate's executor every allowed call would be refused.
    log.warn('no decision_key_file: allowed tool calls carry no attestation, and toolgate\'s executor refuses such calls');
  }

  const checkService = new CheckService({
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
    ...(tracing ? { tracing } : {}),
    ...(config.audit ? { audit: await AuditTrail.open(config.audit.path) } : {}),
    ...(config.decision_key_file ? { attestationKey: await loadAttestationKey(config.decision_key_file) } : {}),
  });

  let grpcServer: AuthzGrpcServer | undefined;
  let ops: OpsServer | undefined;
  try {
    const toolsListFilter = new ToolsListFilter({ engine, servers, log: log.child('mcp-lists') });
    grpcServer = await startGrpcServer({ address: config.grpc.address, checkService, health, log, toolsListFilter });
    ops = await startOpsServer({
      address: config.http.address,
      registry: metrics.registry,
      ready: () => engine.ready(),
      status: () => ({ engine: engine.kind, decision: engine.decisionPath, bundle: source?.status() }),
    });
  } catch (err) {
    await grpcServer?.shutdown(0);
    await source?.stop();
    stopProbe();
    throw err;
  }
  log.info('authz server listening', { grpc_port: grpcServer.port, http_port: ops.port, engine: engine.kind, decision: engine.decisionPath, tools: catalog.names().length });

  const g = grpcServer;
  const o = ops;
  return {
    grpcPort: g.port,
    httpPort: o.port,
    metrics,
    stop: async () => {
      health.setServing(false);
      stopProbe();
      await source?.stop();
      await g.shutdown();
      await o.close();
      await engine.close();
    },
  };
}

async function startEngine(
  config: AuthzConfig,
  metrics: AuthzMetrics,
  health: HealthService,
  log: Logger,
): Promise<{ engine: PolicyEngine; source: BundleSource | undefined; stopProbe: () => void }> {
  const decision = config.policy.decision;
  if (config.policy.engine === 'remote') {
    const remote = config.policy.remote as NonNullable<AuthzConfig['policy']['remote']>;
    const engine = new RemoteOpaEngine({ url: remote.url, decisionPath: decision, timeoutMs: remote.timeout_ms, ...(remote.token ? { token: remote.token } : {}) });
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

  const engine = new WasmPolicyEngine(decision);
  const bundle = config.policy.bundle as NonNullable<AuthzConfig['policy']['bundle']>;
  const source: BundleSource =
    'file' in bundle
      ? new FileBundleSource(bundle.file, { pollIntervalMs: bundle.poll_interval_ms })
      : new HttpBundleSource({
          url: bundle.url,
          pollMinSeconds: bundle.poll_min_seconds,
          pollMaxSeconds: bundle.poll_max_seconds,
          cacheDir: bundle.cache_dir,
          timeoutMs: bundle.timeout_ms,
          ...(bundle.token ? { headers: { authorization: `Bearer ${bundle.token}` } } : {}),
        });
  await source.start(async (b: PolicyBundle) => {
    try {
      await engine.activate(b);
    } catch (err) {
      metrics.bundleActivations.inc({ outcome: 'rejected' });
      log.error('policy bundle rejected; keeping the active one', { revision: b.revision, digest: b.digest, cause: errorMessage(err) });
      throw err;
    }
    metrics.bundleActivations.inc({ outcome: 'activated' });
    metrics.setActiveRevision(b.revision);
    health.setServing(true);
    log.info('policy bundle activated', { revision: b.revision, digest: b.digest, roots: b.roots });
  });
  return { engine, source, stopProbe: () => undefined };
}
