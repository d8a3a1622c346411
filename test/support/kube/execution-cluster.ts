import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { executorRbac, toolRbac } from '../../../src/catalog/rbac-manifests.js';
import { applyAll } from './apply.js';
import type { ControlPlane } from './control-plane.js';
import { PAUSE_IMAGE } from './node-images.js';
import { startRealCluster, type RealCluster } from './real-node.js';

export const EXEC_NS = 'toolgate-exec';
export const TARGET_NS = 'staging';

export interface ExecutionCluster {
  plane: ControlPlane;
  node: RealCluster;
  admin: KubeConfig;
  /** Kubeconfig of the executor's ServiceAccount (Jobs in EXEC_NS, nothing else). */
  executorKubeconfig: string;
  /** What the stack's executor needs to run Jobs on the real node (image, command, callback host). */
  runner: { image: string; command: string[]; callbackHost: string };
  stop(): Promise<void>;
}

/**
 * The cluster the Job runner runs against in tests: a real node (real-node.ts) and its control plane with
 * RBAC on, the execution and target namespaces, the executor's and each tool's RBAC rendered from the
 * catalog, and a Deployment `api-server` in TARGET_NS (real pods: busybox sleeping) for the tools to act on.
 */
export async function startExecutionCluster(catalogPath: string): Promise<ExecutionCluster> {
  const node = await startRealCluster();
  try {
    const plane = node.plane;
    const admin = plane.admin();
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of [EXEC_NS, TARGET_NS]) await core.createNamespace({ body: { metadata: { name } } });
    const catalog = await loadToolCatalogFile(catalogPath);
    const warmPools = catalog.all().some((t) => (t.execution.warm_pool?.size ?? 0) > 0);
    const rbac = { executionNamespace: EXEC_NS, targetNamespaces: [TARGET_NS], executorServiceAccount: 'toolgate-executor', defaultToolServiceAccount: 'toolgate-tool-default', warmPools };
    await applyAll(admin, [...executorRbac(rbac), ...toolRbac(catalog, rbac)]);
    await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: TARGET_NS,
      body: {
        metadata: { name: 'api-server' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'api', image: PAUSE_IMAGE, imagePullPolicy: 'Never', resources: { limits: { cpu: '10m', memory: '16Mi' } } }] },
          },
        },
      },
    });
    const executorKubeconfig = await plane.kubeconfigForServiceAccount(EXEC_NS, 'toolgate-executor');
    return {
      plane,
      node,
      admin,
      executorKubeconfig,
      runner: { image: node.runnerImage, command: node.runnerCommand, callbackHost: node.hostAddress },
      stop: () => node.stop(),
    };
  } catch (err) {
    await node.stop();
    throw err;
  }
}
