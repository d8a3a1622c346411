import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

/** Creates (or replaces) each object, like `kubectl apply` for objects this suite owns. */
export async function applyAll(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) {
    try {
      await api.create(obj);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      await api.replace(obj);
    }
  }
}
