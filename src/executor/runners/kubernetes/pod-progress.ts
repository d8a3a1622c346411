import type { CoreV1Api, V1ContainerStateTerminated, V1Pod } from '@kubernetes/client-node';
import type { RunEvent } from '../runner.js';

/** Waiting reasons that mean the image will not arrive by itself: the call fails at once instead of hanging to its deadline. */
const IMAGE_MISSING = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']);
/** Waiting reasons that mean the container cannot be made at all. */
const CANNOT_CREATE = new Set(['CreateContainerError', 'RunContainerError']);

/**
 * Follows a tool-call Job's pod: reports the phases of its start (scheduled, container started) as run events
 * when first seen, and turns pod conditions into errors an agent can act on: an image that cannot be pulled
 * fails the call at once; a pod that is never scheduled is reported as such at the deadline, not as a bare
 * timeout; a container killed for exceeding its memory limit is reported as OOM-killed.
 */
export class PodProgress {
  private scheduled = false;
  private started = false;
  private unschedulable: string | undefined;

  constructor(
    private readonly core: Pick<CoreV1Api, 'listNamespacedPod'>,
    private readonly namespace: string,
    private readonly job: string,
    private readonly observe: ((e: RunEvent) => void) | undefined,
  ) {}

  /** Reads the pod once; returns why the call cannot go on, if it cannot. API errors are ignored (the Job read is authoritative). */
  async check(): Promise<string | undefined> {
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${this.job}` }).catch(() => undefined);
    const pod = pods?.items[0];
    return pod ? this.read(pod) : undefined;
  }

  /** Why the pod never ran, when it was never scheduled (for the deadline's error). */
  get neverScheduled(): string | undefined {
    return this.scheduled ? undefined : this.unschedulable;
  }

  private read(pod: V1Pod): string | undefined {
    const base = { job: this.job, namespace: this.namespace };
    const cond = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (cond?.status === 'True' && !this.scheduled) {
      this.scheduled = true;
      this.observe?.({ kind: 'pod.scheduled', ...base, pod: pod.metadata?.name ?? '' });
    }
    if (cond?.status === 'False' && cond.reason === 'Unschedulable') this.unschedulable = cond.message ?? 'no node can run it';
    const c = pod.status?.containerStatuses?.[0];
    if ((c?.state?.running || c?.state?.terminated) && !this.started) {
      this.started = true;
      this.observe?.({ kind: 'container.started', ...base, pod: pod.metadata?.name ?? '' });
    }
    const waiting = c?.state?.waiting;
    if (waiting?.reason && IMAGE_MISSING.has(waiting.reason)) return `the tool's image ${c?.image ?? ''} is not available on the node (${waiting.reason}): ${waiting.message ?? ''}`.trim();
    if (waiting?.reason && CANNOT_CREATE.has(waiting.reason)) return `the tool's container cannot be started (${waiting.reason}): ${waiting.message ?? ''}`.trim();
    return undefined;
  }
}

/** A terminated container as an agent should read it: OOM kills named as such, with the limit. */
export function describeTermination(term: V1ContainerStateTerminated, memoryLimit: string | undefined): string | undefined {
  if (term.reason === 'OOMKilled') return `the tool was OOM-killed: it exceeded its memory limit${memoryLimit ? ` of ${memoryLimit}` : ''} (exit ${term.exitCode})`;
  return term.message?.trim() || undefined;
}
