import type { V1Job, V1Secret } from '@kubernetes/client-node';
import { argumentsDigest } from '../../../shared/digest.js';
import type { ToolInvocation } from '../runner.js';
import { callJobName, IDENTITY_LABEL } from './job-identity.js';

/** Labels that mark a Job as one of the executor's, so reconciliation after a restart can find them. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'toolgate-executor';
export const CALL_ID_LABEL = 'toolgate.dev/call-id';
/** The executor instance that started the Job (see executorInstance): it alone reconciles it. */
export const EXECUTOR_LABEL = 'toolgate.dev/executor';
/**
 * The network the call runs with (the catalog's, or "none" when an obligation says so). The chart's per-tool
 * NetworkPolicies that open egress select only pods whose label is not "none" (see network-policies.yaml).
 */
export const NETWORK_LABEL = 'toolgate.dev/network';

export interface JobSettings {
  namespace: string;
  image: string;
  /** The tool runner's command in the image. */
  command: string[];
  ttlSecondsAfterFinished: number;
  resultUrl: string;
  /** Where the runner fetches arguments too large for an environment variable (same token). */
  paramsUrl?: string;
  otelEndpoint?: string;
  /** Tools with no service account of their own run under this one (no RBAC at all). */
  defaultServiceAccount: string;
  /** The starting executor instance, a valid label value. */
  executor: string;
  /** The call's arguments as JSON, serialised once per call. */
  params: string;
}

/** Arguments above this size travel over the authenticated channel instead of the call's Secret (etcd size). */
export const MAX_SECRET_PARAMS_BYTES = 32 * 1024;

/** Where the call's Secret (result token, arguments) is mounted in the tool's container. */
export const CALL_SECRET_MOUNT = '/var/run/toolgate/call';

/**
 * A tool past its deadline or cancelled gets this long between SIGTERM and SIGKILL (Kubernetes' default, 30 s,
 * would keep a pod that ignores SIGTERM acting for a call already reported as timed out).
 */
export const TERMINATION_GRACE_SECONDS = 2;

/** Projected service-account tokens cannot be shorter-lived than this (Kubernetes' minimum). */
const TOKEN_EXPIRATION_SECONDS = 600;

/** Named after the call, the same on every executor replica (see job-identity.ts): the Job is the call's lock. */
export function jobName(callId: string): string {
  return callJobName(callId);
}

/** The call's Secret has the Job's name. */
export function callSecretName(callId: string): string {
  return jobName(callId);
}

/** Small arguments travel in the call's Secret; larger ones are fetched from the replica that started the call. */
export function paramsInSecret(params: string): boolean {
  return Buffer.byteLength(params) <= MAX_SECRET_PARAMS_BYTES;
}

/**
 * What only the call's own pod may read: the result token (whoever holds it can post this call's result) and
 * the arguments. They live in a Secret rather than in the Job's env because Jobs and pods, env included, are
 * readable by every holder of the namespace's `view` role; Secrets are not. The Secret is owned by the Job, so
 * the garbage collector deletes it with the Job (on TTL, on deletion, or after an executor crash), and it is
 * immutable. Created after the Job, which the pod waits for as a kubelet waits for any missing volume.
 */
export function buildCallSecret(inv: ToolInvocation, s: Pick<JobSettings, 'namespace' | 'executor' | 'params'>, token: string, job: { name: string; uid: string }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: callSecretName(inv.callId),
      namespace: s.namespace,
      labels: callLabels(inv, s),
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.name, uid: job.uid, blockOwnerDeletion: false }],
    },
    type: 'Opaque',
    immutable: true,
    stringData: { token, ...(paramsInSecret(s.params) ? { params: s.params } : {}) },
  };
}

function callLabels(inv: ToolInvocation, s: Pick<JobSettings, 'executor'>): Record<string, string> {
  return {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    'app.kubernetes.io/component': 'tool-call',
    [CALL_ID_LABEL]: inv.callId,
    'toolgate.dev/tool': inv.tool.name.replaceAll('_', '-'),
    [EXECUTOR_LABEL]: s.executor,
    [IDENTITY_LABEL]: inv.idempotent ? 'idempotency-key' : 'decision',
    [NETWORK_LABEL]: inv.tool.execution.network,
  };
}

/**
 * One Job for one call: ephemeral (TTL after finishing, deadline from the tool's timeout, never retried),
 * under the tool's own service account, with no token unless the tool needs the Kubernetes API (then a
 * short-lived projected one) and its call's Secret mounted read-only (see buildCallSecret), non-root,
 * read-only root filesystem, no privilege escalation, all capabilities dropped, the runtime's default
 * seccomp profile. Labels and annotations tie it to the call, the agent, the
 * decision and the trace.
 */
export function buildJobManifest(inv: ToolInvocation, s: JobSettings): V1Job {
  const exec = inv.tool.execution;
  const needsApi = exec.network === 'cluster' && exec.rbac.length > 0;
  const env = [
    { name: 'TOOL_NAME', value: inv.tool.name },
    { name: 'CALL_ID', value: inv.callId },
    { name: 'TOOL_RESULT_URL', value: s.resultUrl },
    { name: 'TOOL_RESULT_TOKEN_FILE', value: `${CALL_SECRET_MOUNT}/token` },
    ...(paramsInSecret(s.params) || !s.paramsUrl
      ? [{ name: 'TOOL_PARAMS_FILE', value: `${CALL_SECRET_MOUNT}/params` }]
      : [{ name: 'TOOL_PARAMS_URL', value: s.paramsUrl }]),
    ...(s.otelEndpoint ? [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: s.otelEndpoint }] : []),
    ...(inv.traceparent ? [{ name: 'TRACEPARENT', value: inv.traceparent }] : []),
  ];
  const labels = callLabels(inv, s);
  const annotations: Record<string, string> = {
    'toolgate.dev/tool': inv.tool.name,
    'toolgate.dev/agent-id': inv.agentId,
    'toolgate.dev/decision-id': inv.decisionId,
    'toolgate.dev/policy-revision': inv.policyRevision,
    'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments),
  };
  if (inv.traceparent) annotations['toolgate.dev/traceparent'] = inv.traceparent;
  // The execution settings below already have them applied (executor/call/obligated-tool.ts).
  if (inv.obligations) annotations['toolgate.dev/obligations'] = JSON.stringify(inv.obligations);
  const seccompProfile = { type: 'RuntimeDefault' };

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: jobName(inv.callId), namespace: s.namespace, labels, annotations },
    spec: {
      ttlSecondsAfterFinished: s.ttlSecondsAfterFinished,
      activeDeadlineSeconds: exec.timeout_seconds,
      backoffLimit: 0,
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          serviceAccountName: exec.service_account ?? s.defaultServiceAccount,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile },
          containers: [
            {
              name: 'tool',
              image: s.image,
              command: s.command,
              env,
              resources: {
                limits: { cpu: exec.resources.cpu, memory: exec.resources.memory },
                requests: { cpu: exec.resources.cpu, memory: exec.resources.memory },
              },
              securityContext: {
                runAsNonRoot: true,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                privileged: false,
                capabilities: { drop: ['ALL'] },
                seccompProfile,
              },
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'call', mountPath: CALL_SECRET_MOUNT, readOnly: true },
                ...(needsApi ? [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            { name: 'call', secret: { secretName: callSecretName(inv.callId), defaultMode: 0o444 } },
            ...(needsApi
              ? [
                  {
                    name: 'kube-api-access',
                    projected: {
                      defaultMode: 0o444,
                      sources: [
                        { serviceAccountToken: { path: 'token', expirationSeconds: TOKEN_EXPIRATION_SECONDS } },
                        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
                        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
                      ],
                    },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };
}
