import type { V1Job } from '@kubernetes/client-node';
import { argumentsDigest } from '../../../shared/digest.js';
import type { ToolInvocation } from '../runner.js';

/** Labels that mark a Job as one of the executor's, so reconciliation after a restart can find them. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'toolgate-executor';
export const CALL_ID_LABEL = 'toolgate.dev/call-id';

export interface JobSettings {
  namespace: string;
  image: string;
  /** The tool runner's command in the image. */
  command: string[];
  ttlSecondsAfterFinished: number;
  resultUrl: string;
  resultToken: string;
  /** Distinguishes attempts of the same call (see jobName). */
  attempt: string;
  /** Where the runner fetches arguments too large for an environment variable (same token). */
  paramsUrl?: string;
  otelEndpoint?: string;
  /** Tools with no service account of their own run under this one (no RBAC at all). */
  defaultServiceAccount: string;
}

/** Arguments above this size travel over the authenticated channel instead of the Job spec (env limits). */
export const MAX_ENV_PARAMS_BYTES = 32 * 1024;

/** Projected service-account tokens cannot be shorter-lived than this (Kubernetes' minimum). */
const TOKEN_EXPIRATION_SECONDS = 600;

/** The call id plus a per-attempt suffix: a retry after an executor restart never collides with a leftover Job. */
export function jobName(callId: string, attempt: string): string {
  return `tg-${callId}-${attempt}`;
}

/**
 * One Job for one call: ephemeral (TTL after finishing, deadline from the tool's timeout, never retried),
 * under the tool's own service account, with no token unless the tool needs the Kubernetes API (then a
 * short-lived projected one), non-root, read-only root filesystem, no privilege escalation, all capabilities
 * dropped, the runtime's default seccomp profile. Labels and annotations tie it to the call, the agent, the
 * decision and the trace.
 */
export function buildJobManifest(inv: ToolInvocation, s: JobSettings): V1Job {
  const exec = inv.tool.execution;
  const needsApi = exec.network === 'cluster' && exec.rbac.length > 0;
  const params = JSON.stringify(inv.arguments);
  const env = [
    { name: 'TOOL_NAME', value: inv.tool.name },
    { name: 'CALL_ID', value: inv.callId },
    { name: 'TOOL_RESULT_URL', value: s.resultUrl },
    { name: 'TOOL_RESULT_TOKEN', value: s.resultToken },
    ...(Buffer.byteLength(params) <= MAX_ENV_PARAMS_BYTES || !s.paramsUrl
      ? [{ name: 'TOOL_PARAMS', value: params }]
      : [{ name: 'TOOL_PARAMS_URL', value: s.paramsUrl }]),
    ...(s.otelEndpoint ? [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: s.otelEndpoint }] : []),
    ...(inv.traceparent ? [{ name: 'TRACEPARENT', value: inv.traceparent }] : []),
  ];
  const labels = {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    'app.kubernetes.io/component': 'tool-call',
    [CALL_ID_LABEL]: inv.callId,
    'toolgate.dev/tool': inv.tool.name.replaceAll('_', '-'),
  };
  const annotations: Record<string, string> = {
    'toolgate.dev/tool': inv.tool.name,
    'toolgate.dev/agent-id': inv.agentId,
    'toolgate.dev/decision-id': inv.decisionId,
    'toolgate.dev/policy-revision': inv.policyRevision,
    'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments),
  };
  if (inv.traceparent) annotations['toolgate.dev/traceparent'] = inv.traceparent;
  const seccompProfile = { type: 'RuntimeDefault' };

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: jobName(inv.callId, s.attempt), namespace: s.namespace, labels, annotations },
    spec: {
      ttlSecondsAfterFinished: s.ttlSecondsAfterFinished,
      activeDeadlineSeconds: exec.timeout_seconds,
      backoffLimit: 0,
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
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
                ...(needsApi ? [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
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
