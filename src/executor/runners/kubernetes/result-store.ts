import type { CoreV1Api } from '@kubernetes/client-node';
import { gunzipSync, gzipSync } from 'node:zlib';
import { isResultEnvelope, type ResultEnvelope } from '../../../runner/envelope.js';
import { resultSecretName, type JobRef } from './job-identity.js';

/**
 * Finished calls' results, kept where every executor replica can read them for as long as the call's Job
 * lives: a Secret per call, owned by the Job (the garbage collector deletes it with the Job), immutable,
 * first write wins.
 *
 * Why a Secret: a result may hold what the tool read (it is the agent's answer), and Jobs, pods and
 * ConfigMaps are readable by every holder of the namespace's `view` role; Secrets are not. Why not an
 * annotation on the Job: annotations are capped at 256 KiB in all, results at 1 MiB (MAX_RESULT_BYTES). A
 * Secret holds 1 MiB; the envelope is gzipped (JSON shrinks several times over) to keep etcd's objects
 * small, well under its 1.5 MiB request limit.
 */
export type SecretsApi = Pick<CoreV1Api, 'createNamespacedSecret' | 'readNamespacedSecret'>;

const KEY = 'envelope.json.gz';

export class JobResultStore {
  constructor(
    private readonly core: SecretsApi,
    private readonly namespace: string,
  ) {}

  /** Stores a call's result; a result already stored for this Job stays (a runner's retried post). */
  async save(callId: string, job: JobRef, envelope: ResultEnvelope): Promise<void> {
    const data = gzipSync(Buffer.from(JSON.stringify(envelope), 'utf8')).toString('base64');
    try {
      await this.core.createNamespacedSecret({
        namespace: this.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: resultSecretName(callId),
            namespace: this.namespace,
            labels: { 'app.kubernetes.io/managed-by': 'toolgate-executor', 'app.kubernetes.io/component': 'tool-call-result', 'toolgate.dev/call-id': callId },
            ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.name, uid: job.uid, blockOwnerDeletion: false }],
          },
          type: 'Opaque',
          immutable: true,
          data: { [KEY]: data },
        },
      });
    } catch (err) {
      if ((err as { code?: unknown }).code !== 409) throw err;
    }
  }

  /** The stored result of this Job, or undefined when there is none (yet), or it belongs to an older Job. */
  async load(callId: string, job: JobRef): Promise<ResultEnvelope | undefined> {
    let secret;
    try {
      secret = await this.core.readNamespacedSecret({ namespace: this.namespace, name: resultSecretName(callId) });
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw err;
    }
    if (!secret.metadata?.ownerReferences?.some((o) => o.uid === job.uid)) return undefined;
    const data = secret.data?.[KEY];
    if (!data) return undefined;
    const parsed: unknown = JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8'));
    return isResultEnvelope(parsed) && parsed.call_id === callId ? parsed : undefined;
  }
}
