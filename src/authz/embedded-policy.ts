import { ActivationGate } from './bundle/activation-gate.js';
import type { PolicyBundle } from './bundle/bundle.js';
import type { BundleSource } from './bundle/bundle-source.js';
import { FileBundleSource } from './bundle/file-source.js';
import { HttpBundleSource } from './bundle/http-source.js';
import { evaluateBeforeActivation, RecordedInputs } from './bundle/pre-activation.js';
import { BundleSignatureError, SIGNATURES_FILE, verifyBundleSignature, type VerificationConfig } from './bundle/signature-verification.js';
import type { AuthzConfig, BundleConfig, SigningConfig } from './config.js';
import type { HealthService } from './grpc/health-service.js';
import type { AuthzMetrics } from './observability/metrics.js';
import { ServiceClient } from './opa-config/service-client.js';
import { interpretResult } from './policy/decision.js';
import { obligationsAtLoad } from './policy/obligations.js';
import type { ToolCatalog } from '../catalog/tool-catalog.js';
import { WasmPolicyEngine } from './policy/wasm-engine.js';
import type { Logger } from '../shared/logger.js';

export interface EmbeddedPolicy {
  engine: WasmPolicyEngine;
  source: BundleSource;
  recordedInputs: RecordedInputs;
}

/**
 * The embedded engine and the life of its bundles: a source (file or HTTP/OPA service) hands each new bundle
 * to the activation gate (signature, evaluation before activation, then the engine and whatever else follows
 * the active bundle, such as the decision log mask).
 */
export async function startEmbeddedPolicy(
  config: AuthzConfig,
  deps: { metrics: AuthzMetrics; health: HealthService; log: Logger; alsoActivate?: (bundle: PolicyBundle) => Promise<void>; catalog?: ToolCatalog },
): Promise<EmbeddedPolicy> {
  const { metrics, health, log, alsoActivate } = deps;
  const decision = config.policy.decision;
  const options = { strictBuiltinErrors: config.policy.strict_builtin_errors };
  const engine = new WasmPolicyEngine(decision, options);
  const recordedInputs = new RecordedInputs();
  const bundle = config.policy.bundle as BundleConfig;
  const source = bundleSourceFor(bundle);
  const gate = new ActivationGate({
    verify: signatureVerifier(bundle.signing),
    // The candidate runs in its own instance: the active bundle keeps answering while it is tried.
    evaluate: (b) =>
      evaluateBeforeActivation(b, {
        load: async (candidate) => {
          const trial = new WasmPolicyEngine(decision, options);
          await trial.activate(candidate);
          return trial;
        },
        interpret: (result, input) => {
          const d = interpretResult(result, decision);
          // A candidate obliging what toolgate cannot apply (widening the catalog...) is refused here, not per call.
          if (d.allowed && deps.catalog) obligationsAtLoad(d.obligations, input, deps.catalog);
          return d;
        },
        recorded: () => recordedInputs.inputs(),
      }),
    activate: async (b) => {
      // What must follow the bundle (the mask that hides fields from decision logs) is ready before it decides.
      await alsoActivate?.(b);
      await engine.activate(b);
    },
    activated: (b) => {
      metrics.bundleActivations.inc({ outcome: 'activated' });
      metrics.setActiveRevision(b.revision);
      health.setServing(true);
    },
    rejected: (reason) => {
      metrics.bundleActivations.inc({ outcome: 'rejected' });
      metrics.bundleRejections.inc({ reason });
    },
    log,
  });
  await source.start(gate.activate, gate.unreadable);
  return { engine, source, recordedInputs };
}

/** Where a bundle comes from: a file or directory, or HTTP(S) (an OPA service with its credentials and TLS). */
export function bundleSourceFor(bundle: BundleConfig, log?: Logger): BundleSource {
  return 'file' in bundle
    ? new FileBundleSource(bundle.file, { pollIntervalMs: bundle.poll_interval_ms }, log)
    : new HttpBundleSource(
        {
          url: bundle.url,
          pollMinSeconds: bundle.poll_min_seconds,
          pollMaxSeconds: bundle.poll_max_seconds,
          cacheDir: bundle.cache_dir,
          timeoutMs: bundle.timeout_ms,
          ...(bundle.token ? { headers: { authorization: `Bearer ${bundle.token}` } } : {}),
          ...(bundle.service ? { service: { client: new ServiceClient(bundle.service), resource: bundle.resource ?? '' } } : {}),
        },
        log,
      );
}

/**
 * With keys: the bundle must be signed by one of them. Without: a signed bundle is refused as OPA refuses it
 * ("verification key not provided"), so a team that signs never runs a bundle nobody verified.
 */
export function signatureVerifier(signing: SigningConfig | undefined): (bundle: PolicyBundle) => Promise<void> {
  if (!signing) {
    return async (bundle) => {
      if (bundle.files.has(SIGNATURES_FILE)) throw new BundleSignatureError('the bundle is signed but no verification keys are configured (policy.bundle.signing, or keys and bundles.<name>.signing in the OPA configuration)');
    };
  }
  const config: VerificationConfig = {
    keys: Object.fromEntries(Object.entries(signing.keys).map(([id, k]) => [id, { key: k.key ?? '', algorithm: k.algorithm, ...(k.scope !== undefined ? { scope: k.scope } : {}) }])),
    ...(signing.keyid ? { keyId: signing.keyid } : {}),
    ...(signing.scope !== undefined ? { scope: signing.scope } : {}),
    ...(signing.exclude_files ? { excludeFiles: signing.exclude_files } : {}),
  };
  return async (bundle) => {
    await verifyBundleSignature(bundle, config);
  };
}
