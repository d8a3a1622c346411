import type { ToolImplementation } from '../tool.js';
import { apiError, k8sAttributes, kubeConfig } from './client.js';

export const listPods: ToolImplementation = async (args, ctx) => {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const api = (await kubeConfig()).makeApiClient(CoreV1Api);
  const namespace = String(args.namespace);
  try {
    const list = await ctx.apiCall('GET v1 pods', k8sAttributes('GET', namespace), () =>
      api.listNamespacedPod({ namespace, ...(args.labelSelector ? { labelSelector: String(args.labelSelector) } : {}) }),
    );
    return list.items.map((p) => ({
      name: p.metadata?.name,
      phase: p.status?.phase,
      nodeName: p.spec?.nodeName,
      restarts: (p.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
      ready: (p.status?.containerStatuses ?? []).every((c) => c.ready),
    }));
  } catch (err) {
    throw apiError(err, `namespace ${namespace}`);
  }
};

export const getPodLogs: ToolImplementation = async (args, ctx) => {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const api = (await kubeConfig()).makeApiClient(CoreV1Api);
  const namespace = String(args.namespace);
  const name = String(args.name);
  try {
    const logs = await ctx.apiCall('GET v1 pods/log', k8sAttributes('GET', namespace, { 'k8s.pod.name': name }), () => api.readNamespacedPodLog({
      namespace,
      name,
      ...(args.container ? { container: String(args.container) } : {}),
      tailLines: args.tailLines === undefined ? 100 : Number(args.tailLines),
    }));
    return { logs };
  } catch (err) {
    throw apiError(err, `pod ${namespace}/${name}`);
  }
};

/** Metadata and key names only: a secret's values never leave the cluster through a tool result. */
export const getSecretKeys: ToolImplementation = async (args, ctx) => {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const api = (await kubeConfig()).makeApiClient(CoreV1Api);
  const namespace = String(args.namespace);
  const name = String(args.name);
  try {
    const s = await ctx.apiCall('GET v1 secrets', k8sAttributes('GET', namespace, { 'toolgate.k8s.secret.name': name }), () => api.readNamespacedSecret({ namespace, name }));
    return { name, namespace, type: s.type, keys: Object.keys(s.data ?? {}).sort() };
  } catch (err) {
    throw apiError(err, `secret ${namespace}/${name}`);
  }
};
