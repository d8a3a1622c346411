import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ResultEnvelope } from '../../../runner/envelope.js';
import { createLogger, errorMessage, type Logger } from '../../../shared/logger.js';
import type { Runner, ToolInvocation, ToolOutcome } from '../runner.js';
import { buildCallSecret, buildJobManifest, CALL_ID_LABEL, EXECUTOR_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from './job-manifest.js';
import { describeTermination, PodProgress } from './pod-progress.js';
import { ResultChannel } from './result-channel.js';

/** The part of the Kubernetes API the runner uses (a test double may stand in for it). */
export interface KubeApis {
  batch: Pick<BatchV1Api, 'createNamespacedJob' | 'readNamespacedJob' | 'deleteNamespacedJob' | 'listNamespacedJob'>;
  core: Pick<CoreV1Api, 'createNamespacedSecret' | 'listNamespacedPod'>;
}

export function kubeApis(kubeConfig: KubeConfig): KubeApis {
  return { batch: kubeConfig.makeApiClient(BatchV1Api), core: kubeConfig.makeApiClient(CoreV1Api) };
}

export interface KubernetesJobRunnerOptions {
  api: KubeApis;
  /** This executor instance, a valid label value (executorInstance()): it marks, and reconciles, its own Jobs. */
  instance: string;
  namespace: string;
  image: string;
  command: string[];
  /** Base URL at which Jobs reach this executor instance, not just any replica (e.g. http://10.1.2.3:9292). */
  callbackBaseUrl: string;
  ttlSecondsAfterFinished: number;
  defaultServiceAccount: string;
  otelEndpoint?: string;
  /** Time allowed beyond the tool's own timeout for scheduling and start-up before the executor gives up. */
  startupGraceSeconds?: number;
  pollIntervalMs?: number;
  /** How long reading the Job may keep failing (API unreachable, 5xx, 429) before the run gives up. */
  readErrorToleranceMs?: number;
  log?: Logger;
}

const DEFAULT_READ_ERROR_TOLERANCE_MS = 30_000;

/**
 * Each call becomes one Job in the execution namespace. The runner creates it, follows it to its end, and
 * takes the result from the authenticated result channel; a timeout, a cancellation or a failure deletes the
 * Job (and so its pod) at once, and TTL and activeDeadlineSeconds clean up whatever an executor crash leaves.
 */
export class KubernetesJobRunner implements Runner {
  readonly kind = 'kubernetes' as const;
  readonly channel = new ResultChannel();
  private readonly batch: KubeApis['batch'];
  private readonly core: KubeApis['core'];
  private readonly log: Logger;

  constructor(private readonly opts: KubernetesJobRunnerOptions) {
    this.batch = opts.api.batch;
    this.core = opts.api.core;
    this.log = opts.log ?? createLogger('executor.kubernetes');
  }

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const token = randomBytes(32).toString('base64url');
    const base = this.opts.callbackBaseUrl.replace(/\/+$/, '');
    const settings = {
      namespace: this.opts.namespace,
      image: this.opts.image,
      command: this.opts.command,
      ttlSecondsAfterFinished: this.opts.ttlSecondsAfterFinished,
      resultUrl: `${base}/internal/v1/calls/${inv.callId}/result`,
      paramsUrl: `${base}/internal/v1/calls/${inv.callId}/params`,
      attempt: randomBytes(2).toString('hex'),
      defaultServiceAccount: this.opts.defaultServiceAccount,
      executor: this.opts.instance,
      params: JSON.stringify(inv.arguments),
      ...(this.opts.otelEndpoint ? { otelEndpoint: this.opts.otelEndpoint } : {}),
    };
    const manifest = buildJobManifest(inv, settings);
    const name = manifest.metadata?.name as string;

    let envelope: ResultEnvelope | undefined;
    let wake: () => void = () => undefined;
    const forget = this.channel.expect(inv.callId, token, settings.params, (e) => {
      envelope = e;
      wake();
    });
    // One listener for the whole run (not one per poll): it wakes whichever pause is current.
    const onAbort = (): void => wake();
    inv.signal.addEventListener('abort', onAbort);
    const interval = this.opts.pollIntervalMs ?? 250;
    const pause = (): Promise<void> =>
      new Promise<void>((resolve) => {
        if (envelope || inv.signal.aborted) return resolve();
        const done = (): void => {
          clearTimeout(t);
          wake = () => undefined;
          resolve();
        };
        const t = setTimeout(done, interval);
        wake = done;
      });
    try {
      let uid: string;
      try {
        uid = (await this.batch.createNamespacedJob({ namespace: this.opts.namespace, body: manifest })).metadata?.uid as string;
      } catch (err) {
        // No answer (or a 5xx) does not mean no Job: make sure none is left to act for a call reported as failed.
        if (transient(err)) await this.deleteJob(name);
        return { status: 'unavailable', error: `cannot create Job ${this.opts.namespace}/${name}: ${apiMessage(err)}` };
      }
      try {
        await this.core.createNamespacedSecret({ namespace: this.opts.namespace, body: buildCallSecret(inv, settings, token, { name, uid }) });
      } catch (err) {
        await this.deleteJob(name);
        return { status: 'unavailable', error: `cannot create the call's Secret ${this.opts.namespace}/${name}: ${apiMessage(err)}` };
      }
      inv.observe?.({ kind: 'job.created', job: name, namespace: this.opts.namespace });

      const deadline = Date.now() + (inv.tool.execution.timeout_seconds + (this.opts.startupGraceSeconds ?? 30)) * 1000;
      let reportedStart = false;
      let completedAt: number | undefined;
      let unreadableSince: number | undefined;
      // The pod is read less often than the Job: its phases and conditions (image missing, unschedulable).
      const pod = new PodProgress(this.core, this.opts.namespace, name, inv.observe);
      let podCheckedAt = 0;
      const tolerance = this.opts.readErrorToleranceMs ?? DEFAULT_READ_ERROR_TOLERANCE_MS;
      for (;;) {
        if (envelope) {
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: envelope.status });
          return envelope.status === 'ok'
            ? { status: 'succeeded', result: envelope.result, durationMs: elapsed() }
            : { status: 'failed', exitCode: 1, error: envelope.error.message, durationMs: elapsed() };
        }
        if (inv.signal.aborted) {
          await this.deleteJob(name);
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: 'cancelled' });
          return { status: 'cancelled', durationMs: elapsed() };
        }
        if (Date.now() > deadline) {
          await this.deleteJob(name);
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: 'timeout' });
          return { status: 'timeout', durationMs: elapsed() };
        }
        let job: V1Job;
        try {
          job = await this.batch.readNamespacedJob({ name, namespace: this.opts.namespace });
          unreadableSince = undefined;
        } catch (err) {
          // A blip (API server restart, overload) must not abandon a Job that keeps running: the tool would
          // act for a call reported as failed, and the agent's retry would start a second one. Keep polling
          // (the result may still arrive, the deadline above still holds); when giving up, stop the Job first.
          const firstFailure = unreadableSince === undefined;
          unreadableSince ??= Date.now();
          if (transient(err) && Date.now() - unreadableSince < tolerance) {
            if (firstFailure) this.log.warn('cannot read Job; retrying', { job: name, cause: apiMessage(err) });
            await pause();
            continue;
          }
          await this.deleteJob(name);
          return { status: 'unavailable', error: `lost track of Job ${name}: ${apiMessage(err)}` };
        }
        if (!completedAt && Date.now() - podCheckedAt >= 500) {
          podCheckedAt = Date.now();
          const fatal = await pod.check();
          if (fatal) {
            await this.deleteJob(name);
            inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: 'pod_failed' });
            return { status: 'unavailable', error: fatal };
          }
        }
        if (!reportedStart && (job.status?.active ?? 0) + (job.status?.succeeded ?? 0) + (job.status?.failed ?? 0) > 0) {
          reportedStart = true;
          inv.observe?.({ kind: 'pod.started', job: name, namespace: this.opts.namespace });
        }
        const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
        if (failed) {
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: failed.reason ?? 'Failed' });
          if (failed.reason === 'DeadlineExceeded') {
            await this.deleteJob(name);
            const never = pod.neverScheduled;
            if (never) return { status: 'unavailable', error: `the tool's pod was never scheduled before its deadline: ${never}` };
            return { status: 'timeout', durationMs: elapsed() };
          }
          const term = await this.terminatedState(name, inv.tool.execution.resources.memory);
          return { status: 'failed', exitCode: term?.exitCode ?? null, error: term?.message?.trim() || `Job ${name} failed: ${failed.message ?? failed.reason ?? ''}`, durationMs: elapsed() };
        }
        const complete = job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
        if (complete) {
          // The result normally arrives before the Job completes; allow a moment for it to land.
          completedAt ??= Date.now();
          if (Date.now() - completedAt > 3000) return { status: 'failed', exitCode: 0, error: 'the tool finished without reporting a result', durationMs: elapsed() };
        }
        await pause();
      }
    } finally {
      inv.signal.removeEventListener('abort', onAbort);
      forget();
    }
  }

  /** The pod's exit status and termination message (stdout tail when the tool crashed). */
  private async terminatedState(job: string, memoryLimit: string | undefined): Promise<{ exitCode: number; message?: string } | undefined> {
    try {
      const pods = await this.core.listNamespacedPod({ namespace: this.opts.namespace, labelSelector: `job-name=${job}` });
      const term = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
      const message = term ? describeTermination(term, memoryLimit) : undefined;
      return term ? { exitCode: term.exitCode, ...(message ? { message } : {}) } : undefined;
    } catch {
      return undefined;
    }
  }

  private async deleteJob(name: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ name, namespace: this.opts.namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0 });
    } catch (err) {
      if (statusOf(err) !== 404) this.log.error('could not delete Job; TTL and its deadline will clean it up', { job: name, cause: apiMessage(err) });
    }
  }

  /**
   * After a restart no caller waits for any Job this instance started: delete the ones still running so
   * nothing acts after its caller has gone (finished ones are left to their TTL, for inspection). Only this
   * instance's: other replicas' Jobs are live calls. The trade-off: a replaced pod comes back under a new name,
   * so its predecessor's Jobs are nobody's to reconcile; they run at most to activeDeadlineSeconds (their
   * result reaches no one) and go with their TTL.
   */
  async reconcile(): Promise<number> {
    const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY},${EXECUTOR_LABEL}=${this.opts.instance}`;
    const jobs = await this.batch.listNamespacedJob({ namespace: this.opts.namespace, labelSelector });
    let deleted = 0;
    for (const job of jobs.items) {
      const done = job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      if (done || !job.metadata?.name) continue;
      await this.deleteJob(job.metadata.name);
      deleted++;
      this.log.warn('deleted an orphaned tool-call Job', { job: job.metadata.name, call_id: job.metadata.labels?.[CALL_ID_LABEL] });
    }
    return deleted;
  }

  async close(): Promise<void> {}
}

/** The HTTP status of an API error; undefined when there was no answer (network errors carry string codes). */
function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  return typeof e.statusCode === 'number' ? e.statusCode : undefined;
}

/** Worth trying again: no answer, a server error, throttling, a request timeout. */
function transient(err: unknown): boolean {
  const status = statusOf(err);
  return status === undefined || status >= 500 || status === 408 || status === 429;
}

function apiMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown };
  const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
  try {
    const parsed = JSON.parse(body) as { message?: string };
    if (parsed.message) return `${e.code ?? ''} ${parsed.message}`.trim();
  } catch {
    // not JSON
  }
  return errorMessage(err);
}
