import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { executorRbac, toolRbac } from '../../../src/catalog/rbac-manifests.js';
import { applyAll } from './apply.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { startNodeStandIn, type NodeStandIn } from './node-standin.js';

export const EXEC_NS = 'toolgate-exec';
export const TARGET_NS = 'staging';

export interface ExecutionCluster {
  plane: ControlPlane;
  node: NodeStandIn;
  admin: KubeConfig;
  /** Kubeconfig of the executor's ServiceAccount (Jobs in EXEC_NS, nothing else). */
  executorKubeconfig: string;
  stop(): Promise<void>;
}

/**
 * The cluster the Job runner runs against in tests: a real kube-apiserver, etcd and kube-controller-manager
 * with RBAC on, the execution and target namespaces, the executor's and each tool's RBAC rendered from the
 * catalog, a Deployment `api-server` in TARGET_NS for the tools to act on, and the node stand-in.
 */
export async function startExecutionCluster(catalogPath: string, plane?: ControlPlane): Promise<ExecutionCluster> {
  plane ??= await startControlPlane();
  const admin = plane.admin();
  const core = admin.makeApiClient(CoreV1Api);
  for (const name of [EXEC_NS, TARGET_NS]) await core.createNamespace({ body: { metadata: { name } } });
  const catalog = await loadToolCatalogFile(catalogPath);
  const rbac = { executionNamespace: EXEC_NS, targetNamespaces: [TARGET_NS], executorServiceAccount: 'toolgate-executor', defaultToolServiceAccount: 'toolgate-tool-default' };
  await applyAll(admin, [...executorRbac(rbac), ...toolRbac(catalog, rbac)]);
  await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: TARGET_NS,
    body: {
      metadata: { name: 'api-server' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.local/api:1' }] } } },
    },
  });
  const executorKubeconfig = await plane.kubeconfigForServiceAccount(EXEC_NS, 'toolgate-executor');
  const node = await startNodeStandIn({ controlPlane: plane, namespaces: [EXEC_NS] });
  const p = plane;
  return {
    plane: p,
    node,
    admin,
    executorKubeconfig,
    stop: async () => {
      await node.stop();
      await p.stop();
    },
  };
}
