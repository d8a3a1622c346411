import type { ToolCatalog } from './tool-catalog.js';

/**
 * Least-privilege RBAC derived from the tool catalog: one ServiceAccount per tool in the execution
 * namespace, and in each target namespace a Role with exactly the verbs the tool declares, bound to that
 * ServiceAccount. Tools without RBAC share a ServiceAccount that is bound to nothing. The executor itself
 * may only create, watch and delete Jobs, read their pods, create their Secrets and read one by name (never
 * list them), in the execution namespace.
 */
export interface RbacOptions {
  executionNamespace: string;
  targetNamespaces: string[];
  executorServiceAccount: string;
  defaultToolServiceAccount: string;
  /** A tool has a warm pool (execution.warm_pool): the executor then also creates, patches and deletes its own pods. */
  warmPools?: boolean;
}

export type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const LABELS = { 'app.kubernetes.io/part-of': 'toolgate' };

export function executorRbac(o: RbacOptions): Manifest[] {
  const meta = { namespace: o.executionNamespace, labels: LABELS };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: o.executorServiceAccount, ...meta }, automountServiceAccountToken: true },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'toolgate-executor', ...meta },
      rules: [
        // Warm pools: a warm call's lock is its Job, held without a pod; one no pod took is released (patched) to run.
        { apiGroups: ['batch'], resources: ['jobs'], verbs: o.warmPools ? ['create', 'get', 'list', 'watch', 'delete', 'patch'] : ['create', 'get', 'list', 'watch', 'delete'] },
        // Warm pools (tools that opt in): the executor makes, claims (patches) and deletes its own pods.
        { apiGroups: [''], resources: ['pods'], verbs: o.warmPools ? ['get', 'list', 'watch', 'create', 'patch', 'delete'] : ['get', 'list', 'watch'] },
        // Each call's Secret (result token, arguments) and its result's: create, and get by name (a replica
        // reads the result another stored; never list). The garbage collector deletes each with its Job.
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'toolgate-executor', ...meta },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'toolgate-executor' },
      subjects: [{ kind: 'ServiceAccount', name: o.executorServiceAccount, namespace: o.executionNamespace }],
    },
  ];
}

export function toolRbac(catalog: ToolCatalog, o: RbacOptions): Manifest[] {
  const out: Manifest[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: o.defaultToolServiceAccount, namespace: o.executionNamespace, labels: LABELS }, automountServiceAccountToken: false },
  ];
  for (const tool of catalog.all()) {
    const sa = tool.execution.service_account;
    if (!sa) continue;
    out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: o.executionNamespace, labels: { ...LABELS, 'toolgate.dev/tool': tool.name.replaceAll('_', '-') } }, automountServiceAccountToken: false });
    if (tool.execution.rbac.length === 0) continue;
    for (const ns of o.targetNamespaces) {
      const name = `toolgate-tool-${tool.name.replaceAll('_', '-')}`;
      out.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: ns, labels: LABELS }, rules: tool.execution.rbac });
      out.push({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: ns, labels: LABELS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: o.executionNamespace }],
      });
    }
  }
  return out;
}
