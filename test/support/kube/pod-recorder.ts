import { Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

/**
 * Every pod of a namespace seen while it records, as last seen (a watch: a pod created, claimed and deleted
 * between two lists is still counted). For tests that count runs: a warm pod is deleted as soon as its call
 * ends, before any list after the call could see it.
 */
export interface PodRecorder {
  pods(): V1Pod[];
  stop(): void;
}

export async function recordPods(kc: KubeConfig, namespace: string): Promise<PodRecorder> {
  const seen = new Map<string, V1Pod>();
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (_phase: string, pod: V1Pod) => {
      const name = pod.metadata?.name;
      // Labels only ever grow on these pods (a claim adds the call id): keep the union.
      if (name) seen.set(name, { ...pod, metadata: { ...pod.metadata, labels: { ...seen.get(name)?.metadata?.labels, ...pod.metadata?.labels } } });
    },
    () => undefined,
  );
  return { pods: () => [...seen.values()], stop: () => controller.abort() };
}
