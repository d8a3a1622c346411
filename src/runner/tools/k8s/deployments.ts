import type { ToolImplementation } from '../tool.js';
import { apiError, k8sAttributes, kubeConfig } from './client.js';

export const getDeployment: ToolImplementation = async (args, ctx) => {
  const { AppsV1Api } = await import('@kubernetes/client-node');
  const api = (await kubeConfig()).makeApiClient(AppsV1Api);
  const namespace = String(args.namespace);
  const name = String(args.name);
  try {
    const d = await ctx.apiCall('GET apps/v1 deployments', k8sAttributes('GET', namespace, { 'k8s.deployment.name': name }), () => api.readNamespacedDeployment({ namespace, name }));
    return {
      name,
      namespace,
      replicas: d.spec?.replicas ?? 0,
      readyReplicas: d.status?.readyReplicas ?? 0,
      availableReplicas: d.status?.availableReplicas ?? 0,
      updatedReplicas: d.status?.updatedReplicas ?? 0,
      generation: d.metadata?.generation ?? 0,
      observedGeneration: d.status?.observedGeneration ?? 0,
      conditions: (d.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
      images: (d.spec?.template.spec?.containers ?? []).map((c) => c.image),
    };
  } catch (err) {
    throw apiError(err, `deployment ${namespace}/${name}`);
  }
};

export const scaleDeployment: ToolImplementation = async (args, ctx) => {
  const k8s = await import('@kubernetes/client-node');
  const api = (await kubeConfig()).makeApiClient(k8s.AppsV1Api);
  const namespace = String(args.namespace);
  const name = String(args.name);
  const replicas = Number(args.replicas);
  try {
    const target = { 'k8s.deployment.name': name };
    const before = await ctx.apiCall('GET apps/v1 deployments/scale', k8sAttributes('GET', namespace, target), () => api.readNamespacedDeploymentScale({ namespace, name }));
    await ctx.apiCall('PATCH apps/v1 deployments/scale', k8sAttributes('PATCH', namespace, { ...target, 'toolgate.k8s.replicas': replicas }), () =>
      api.patchNamespacedDeploymentScale({ namespace, name, body: { spec: { replicas } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)),
    );
    return { name, namespace, previousReplicas: before.spec?.replicas ?? 0, replicas };
  } catch (err) {
    throw apiError(err, `deployment ${namespace}/${name}`);
  }
};
