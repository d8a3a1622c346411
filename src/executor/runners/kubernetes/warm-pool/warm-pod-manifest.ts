import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { ToolDefinition } from '../../../../catalog/tool-catalog.js';
import { buildJobManifest, CALL_SECRET_MOUNT, EXECUTOR_LABEL, MANAGED_BY, MANAGED_BY_LABEL, type JobSettings } from '../job-manifest.js';

export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const WARM_POD_COMPONENT = 'warm-pod';
/** idle (starting) -> ready (waiting on the claim channel) -> claimed, with the claiming call's id beside it. */
export const POOL_STATE_LABEL = 'toolgate.dev/pool-state';
export const CALL_ID_LABEL = 'toolgate.dev/call-id';

/**
 * A warm pod that nobody claims ends by itself after this long (the pool replaces it): a pod left behind by an
 * executor that died is gone within the hour, and its service-account token is never long-lived.
 */
export const WARM_POD_MAX_LIFETIME_SECONDS = 1800;

export interface WarmPodSettings extends Pick<JobSettings, 'namespace' | 'image' | 'command' | 'defaultServiceAccount' | 'executor' | 'otelEndpoint'> {
  /** Where the pod asks for its one call (the executor's claim route for this pod). */
  claimUrl: string;
}

/**
 * A pre-started pod for one tool: exactly the pod a call's Job would run (built by the same function, so the
 * hardening cannot drift: tool service account, non-root 65532, read-only root, no capabilities,
 * RuntimeDefault seccomp, limits, projected token only when the tool needs the API), except that it knows no
 * call yet: instead of a call's Secret it mounts its own (the claim token), and asks the executor for its one
 * call at TOOL_CLAIM_URL. It never restarts; it ends by itself after WARM_POD_MAX_LIFETIME_SECONDS.
 */
export function buildWarmPod(tool: ToolDefinition, name: string, s: WarmPodSettings): V1Pod {
  // The Job builder names the call's Secret `tg-<callId>`: the pod's name is that shape, with an id no call has.
  const job = buildJobManifest(
    { callId: podId(name), tool, arguments: {}, agentId: '', decisionId: '', policyRevision: '', signal: new AbortController().signal },
    { ...s, ttlSecondsAfterFinished: 0, resultUrl: '', params: '{}' },
  );
  const template = job.spec?.template;
  const spec = template?.spec;
  const container = spec?.containers[0];
  if (!spec || !container) throw new Error('the Job builder returned no pod template');
  container.env = [
    { name: 'TOOL_NAME', value: tool.name },
    { name: 'TOOL_CLAIM_URL', value: s.claimUrl },
    { name: 'TOOL_CLAIM_TOKEN_FILE', value: `${CALL_SECRET_MOUNT}/token` },
    ...(s.otelEndpoint ? [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: s.otelEndpoint }] : []),
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: s.namespace, labels: warmPodLabels(tool, s.executor), annotations: { 'toolgate.dev/tool': tool.name } },
    spec: { ...spec, activeDeadlineSeconds: WARM_POD_MAX_LIFETIME_SECONDS },
  };
}

/** The pod's own Secret: its claim token. Owned by the pod (deleted with it), immutable. */
export function buildWarmPodSecret(pod: { name: string; uid: string; namespace: string }, labels: Record<string, string>, token: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: pod.name, namespace: pod.namespace, labels, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid, blockOwnerDeletion: false }] },
    type: 'Opaque',
    immutable: true,
    stringData: { token },
  };
}

export function warmPodLabels(tool: ToolDefinition, executor: string): Record<string, string> {
  return {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [COMPONENT_LABEL]: WARM_POD_COMPONENT,
    'toolgate.dev/tool': tool.name.replaceAll('_', '-'),
    [EXECUTOR_LABEL]: executor,
    [POOL_STATE_LABEL]: 'idle',
  };
}

/** `tg-w<19 hex>` -> `w<19 hex>`: never a call id (those are 20 hex digits), so never a call's Job or Secret name. */
function podId(name: string): string {
  const m = /^tg-(w[0-9a-f]{19})$/.exec(name);
  if (!m) throw new Error(`not a warm pod name: ${name}`);
  return m[1] as string;
}
