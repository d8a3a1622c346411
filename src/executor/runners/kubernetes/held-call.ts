import type { V1Job } from '@kubernetes/client-node';
import type { JobRef } from './job-identity.js';
import type { JobSettings } from './job-manifest.js';

/**
 * A call held for a warm pod: its lock is the call's own Job (the name a cold Job would have, so a cold and a
 * warm run of one call collide at the apiserver like two cold ones), created with parallelism 0 so that the
 * Job controller starts no pod for it. Marked with the warm pod's name, so a replica that attaches knows to
 * look for the result stored with the Job rather than for the Job to complete.
 */
export interface HeldCall {
  ref: JobRef;
  /** The result token, bound to the held Job (job-identity.ts): any replica accepts the warm pod's result. */
  token: string;
  settings: JobSettings;
}

export const WARM_POD_ANNOTATION = 'toolgate.dev/warm-pod';

/**
 * A held Job outlives its warm run by this much (the run is bounded by the tool's timeout from the claim, the
 * Job's deadline counts from its creation, just before): it ends with DeadlineExceeded, never with a pod, and
 * its TTL then keeps it (the lock and its result) as long as a cold Job's.
 */
export const HELD_DEADLINE_MARGIN_SECONDS = 5;

export function markHeld(job: V1Job, warmPod: string, deadlineSeconds: number): void {
  if (!job.spec || !job.metadata) throw new Error('a Job manifest has metadata and spec');
  job.spec.parallelism = 0;
  job.spec.activeDeadlineSeconds = deadlineSeconds;
  job.metadata.annotations = { ...job.metadata.annotations, [WARM_POD_ANNOTATION]: warmPod };
}

/** Held for a warm pod, not (or not yet) released to run as a cold Job. */
export function isHeld(job: V1Job): boolean {
  return job.spec?.parallelism === 0 && job.metadata?.annotations?.[WARM_POD_ANNOTATION] !== undefined;
}
