import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * One call, one Job name, on every executor replica: the Job is named after the call's identity (the
 * Idempotency-Key scoped to the agent and the tool, or the gateway's decision), so the kube-apiserver is the
 * lock. The replica whose create succeeds runs the call; any other gets AlreadyExists and attaches to that
 * Job and its result. No per-attempt suffix: a second Job for the same call is exactly what must not exist.
 */
export function callJobName(callId: string): string {
  return `tg-${callId}`;
}

/** The Secret holding a finished call's result, owned by its Job (see result-store.ts). */
export function resultSecretName(callId: string): string {
  return `${callJobName(callId)}-result`;
}

/** How the call is named, as a label: reconciliation treats the two kinds differently. */
export const IDENTITY_LABEL = 'toolgate.dev/identity';
export type IdentityKind = 'idempotency-key' | 'decision';

export interface JobRef {
  name: string;
  uid: string;
}

/**
 * The bearer token a Job presents with its result: an HMAC of the Job's name and uid under a key derived
 * from the executors' shared decision key. Any replica can check it against the Job it reads from the API,
 * so a result is accepted whichever replica receives it, and only for the Job it was made for (a later Job
 * of the same name has another uid). Only the call's own pod reads it, from the call's Secret.
 */
export class ResultTokens {
  private readonly key: Buffer;

  constructor(sharedKey: Buffer) {
    this.key = createHmac('sha256', sharedKey).update('toolgate result-channel token v1').digest();
  }

  tokenFor(job: JobRef): string {
    return createHmac('sha256', this.key).update(`${job.name}\n${job.uid}`).digest('base64url');
  }

  matches(job: JobRef, presented: string): boolean {
    const want = Buffer.from(this.tokenFor(job));
    const got = Buffer.from(presented);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/**
 * How long a finished call's Job (its lock, with its result) stays: at least the configured TTL, the
 * idempotency window for a call a retry may name again, and an attestation's whole life for any call, so
 * that a replayed attestation still finds the Job its decision created.
 */
export function jobTtlSeconds(o: { configured: number; idempotent: boolean; idempotencyWindowSeconds: number; attestationWindowSeconds: number }): number {
  return Math.max(o.configured, o.attestationWindowSeconds, o.idempotent ? o.idempotencyWindowSeconds : 0);
}
