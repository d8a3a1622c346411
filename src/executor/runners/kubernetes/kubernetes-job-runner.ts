import { BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ResultEnvelope } from '../../../runner/envelope.js';
import { argumentsDigest } from '../../../shared/digest.js';
import { createLogger, errorMessage, type Logger } from '../../../shared/logger.js';
import type { Runner, ToolInvocation, ToolOutcome } from '../runner.js';
import { callJobName, IDENTITY_LABEL, jobTtlSeconds, ResultTokens, type JobRef } from './job-identity.js';
import { buildCallSecret, buildJobManifest, CALL_ID_LABEL, callSecretName, EXECUTOR_LABEL, MANAGED_BY, MANAGED_BY_LABEL, paramsInSecret, type JobSettings } from './job-manifest.js';
import { HELD_DEADLINE_MARGIN_SECONDS, isHeld, markHeld, WARM_POD_ANNOTATION, type HeldCall } from './held-call.js';
import { describeTermination, PodProgress } from './pod-progress.js';
import { ResultChannel } from './result-channel.js';
import { JobResultStore } from './result-store.js';

/** The part of the Kubernetes API the runner uses (a test double may stand in for it). */
export interface KubeApis {
  batch: Pick<BatchV1Api, 'createNamespacedJob' | 'readNamespacedJob' | 'deleteNamespacedJob' | 'listNamespacedJob' | 'patchNamespacedJob'>;
  core: Pick<CoreV1Api, 'createNamespacedSecret' | 'readNamespacedSecret' | 'listNamespacedPod'>;
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
  /** Base URL at which Jobs post results: any replica will do (default: callbackBaseUrl). */
  resultBaseUrl?: string;
  /**
   * The executors' shared key (the decision key): with it, any replica accepts a call's result, stores it
   * with the Job, and any replica waiting for the call reads it (see job-identity.ts, result-store.ts).
   */
  sharedKey?: Buffer;
  /** How long a finished call with an Idempotency-Key can be asked for again (its Job is kept that long). */
  idempotencyWindowSeconds?: number;
  /** An attestation's life plus clock skew: every Job outlives it, so a replay finds the Job. */
  attestationWindowSeconds?: number;
  ttlSecondsAfterFinished: number;
  defaultServiceAccount: string;
  otelEndpoint?: string;
  /** Time allowed beyond the tool's own timeout for scheduling and start-up before the executor gives up. */
  startupGraceSeconds?: number;
  pollIntervalMs?: number;
  /** How long reading the Job may keep failing (API unreachable, 5xx, 429) before the run gives up. */
  readErrorToleranceMs?: number;
  /** See finishStart: how long a followed Job may lack its call Secret when this replica cannot write it. */
  secretGraceMs?: number;
  log?: Logger;
}

const DEFAULT_READ_ERROR_TOLERANCE_MS = 30_000;
/** How long a follower waits for the call Secret of a Job whose arguments are too large for it (finishStart). */
const DEFAULT_SECRET_GRACE_MS = 5_000;
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/**
 * Each call becomes one Job in the execution namespace. The runner creates it, follows it to its end, and
 * takes the result from the authenticated result channel; a timeout, a cancellation or a failure deletes the
 * Job (and so its pod) at once, and TTL and activeDeadlineSeconds clean up whatever an executor crash leaves.
 */
export class KubernetesJobRunner implements Runner {
  readonly kind = 'kubernetes' as const;
  readonly channel: ResultChannel;
  private readonly batch: KubeApis['batch'];
  private readonly core: KubeApis['core'];
  private readonly log: Logger;
  private readonly tokens: ResultTokens | undefined;
  private readonly results: JobResultStore | undefined;

  constructor(private readonly opts: KubernetesJobRunnerOptions) {
    this.batch = opts.api.batch;
    this.core = opts.api.core;
    this.log = opts.log ?? createLogger('executor.kubernetes');
    this.tokens = opts.sharedKey ? new ResultTokens(opts.sharedKey) : undefined;
    this.results = opts.sharedKey ? new JobResultStore(opts.api.core, opts.namespace) : undefined;
    const tokens = this.tokens;
    const results = this.results;
    this.channel = new ResultChannel(
      tokens && results
        ? {
            verify: async (callId, token) => {
              const job = await this.readJobRef(callJobName(callId));
              return job && tokens.matches(job, token) ? job : undefined;
            },
            store: (callId, job, envelope) => results.save(callId, job, envelope),
          }
        : undefined,
    );
  }

  /** The Job's name and uid, or undefined when there is no such Job. */
  private async readJobRef(name: string): Promise<JobRef | undefined> {
    try {
      const job = await this.batch.readNamespacedJob({ name, namespace: this.opts.namespace });
      return job.metadata?.uid ? { name, uid: job.metadata.uid } : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** What a call's Job (or its held lock, see hold()) is built from. */
  private settingsFor(inv: ToolInvocation): JobSettings {
    const base = this.opts.callbackBaseUrl.replace(/\/+$/, '');
    const resultBase = (this.opts.resultBaseUrl ?? this.opts.callbackBaseUrl).replace(/\/+$/, '');
    return {
      namespace: this.opts.namespace,
      image: this.opts.image,
      command: this.opts.command,
      ttlSecondsAfterFinished: jobTtlSeconds({
        configured: this.opts.ttlSecondsAfterFinished,
        idempotent: inv.idempotent === true,
        idempotencyWindowSeconds: this.opts.idempotencyWindowSeconds ?? 0,
        attestationWindowSeconds: this.opts.attestationWindowSeconds ?? 0,
      }),
      resultUrl: `${resultBase}/internal/v1/calls/${inv.callId}/result`,
      paramsUrl: `${base}/internal/v1/calls/${inv.callId}/params`,
      defaultServiceAccount: this.opts.defaultServiceAccount,
      executor: this.opts.instance,
      params: JSON.stringify(inv.arguments),
      ...(this.opts.otelEndpoint ? { otelEndpoint: this.opts.otelEndpoint } : {}),
    };
  }

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    return this.runJob(inv, this.settingsFor(inv));
  }

  /**
   * A warm call takes the same lock as a cold one before it claims a pod: the call's Job, under the name a
   * cold Job would get, created held (parallelism 0: the Job controller gives it no pod). AlreadyExists means
   * another replica (or an earlier process) has the call: the caller attaches with run(), wherever it runs.
   * The held Job carries the call's annotations (decision, arguments digest) for attach(), owns the result
   * Secret that any replica reads, and its deadline (the tool's timeout plus HELD_DEADLINE_MARGIN_SECONDS)
   * ends it, after which the TTL removes it with the result.
   */
  async hold(inv: ToolInvocation, warmPod: string): Promise<{ held: HeldCall } | { exists: true } | { outcome: ToolOutcome }> {
    const settings = this.settingsFor(inv);
    const manifest = buildJobManifest(inv, settings);
    const name = manifest.metadata?.name as string;
    markHeld(manifest, warmPod, inv.tool.execution.timeout_seconds + HELD_DEADLINE_MARGIN_SECONDS);
    let ref: JobRef;
    try {
      ref = { name, uid: (await this.batch.createNamespacedJob({ namespace: this.opts.namespace, body: manifest })).metadata?.uid as string };
    } catch (err) {
      if (statusOf(err) === 409) return { exists: true };
      if (transient(err)) await this.deleteJob(name);
      return { outcome: { status: 'unavailable', error: `cannot create Job ${this.opts.namespace}/${name}: ${apiMessage(err)}` } };
    }
    inv.observe?.({ kind: 'job.created', job: name, namespace: this.opts.namespace });
    const token = this.tokens ? this.tokens.tokenFor(ref) : randomBytes(32).toString('base64url');
    return { held: { ref, token, settings } };
  }

  /**
   * A held call that no warm pod took (none ready, or the pod never asked for it): its Job is released to run
   * as a cold Job (parallelism 1), and followed as one.
   */
  async runHeld(inv: ToolInvocation, held: HeldCall): Promise<ToolOutcome> {
    return this.runJob(inv, held.settings, held);
  }

  /**
   * After a warm run, what followers on other replicas must see: a result the pod posted is stored already
   * (the result channel); a failure with no result (OOM-killed, crashed) is stored as the call's error; a
   * timeout, a cancellation or a lost pod deletes the Job (as a cold Job's would be), so a retry may run again.
   */
  async settleHeld(inv: ToolInvocation, held: HeldCall, outcome: ToolOutcome): Promise<void> {
    if (outcome.status === 'succeeded') return;
    if (outcome.status === 'failed') {
      if (!this.results) return;
      try {
        await this.results.save(inv.callId, held.ref, { call_id: inv.callId, status: 'error', error: { message: outcome.error, code: 'warm_pod_failed' } });
      } catch (err) {
        this.log.warn('cannot store a warm call\'s failure with its Job', { job: held.ref.name, cause: apiMessage(err) });
      }
      return;
    }
    await this.deleteJob(held.ref.name);
  }

  /** The stored result of a call held for a warm pod (undefined while none). */
  storedResultOf(callId: string, held: HeldCall): Promise<ResultEnvelope | undefined> {
    return this.storedResult(callId, held.ref);
  }

  private async runJob(inv: ToolInvocation, settings: JobSettings, held?: HeldCall): Promise<ToolOutcome> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const manifest = buildJobManifest(inv, settings);
    const name = manifest.metadata?.name as string;

    let envelope: ResultEnvelope | undefined;
    let wake: () => void = () => undefined;
    const onResult = (e: ResultEnvelope): void => {
      envelope = e;
      wake();
    };
    let forget: () => void = () => undefined;
    // Set once this process's Job exists: a cancelled call's Job is deleted at once, not after whatever
    // API read is in flight (on a busy apiserver one takes a second or more).
    let stopOnAbort: (() => Promise<void>) | undefined;
    let stopping: Promise<void> | undefined;
    // One listener for the whole run (not one per poll): it wakes whichever pause is current.
    const onAbort = (): void => {
      if (stopOnAbort) stopping ??= stopOnAbort();
      wake();
    };
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
    // The Job this process started (it alone cancels it), or undefined while following another replica's.
    let owned = false;
    let ref: JobRef;
    try {
      try {
        ref = held ? await this.release(held) : { name, uid: (await this.batch.createNamespacedJob({ namespace: this.opts.namespace, body: manifest })).metadata?.uid as string };
        owned = true;
        // From here a cancellation (even one that came while the Job was being created) deletes it at once.
        stopOnAbort = () => this.deleteJob(name);
        if (inv.signal.aborted) stopping = stopOnAbort();
      } catch (err) {
        if (held || statusOf(err) !== 409) {
          // No answer (or a 5xx) does not mean no Job: make sure none is left to act for a call reported as failed.
          // A held Job that could not be released never had a pod: it goes too, so a retry can run the call.
          if (held || transient(err)) await this.deleteJob(name);
          return { status: 'unavailable', error: `cannot ${held ? 'release the held' : 'create'} Job ${this.opts.namespace}/${name}: ${apiMessage(err)}` };
        }
        // AlreadyExists: this call is another replica's (or an earlier process's) Job. Attach, never run again.
        const attached = await this.attach(inv, name);
        if ('status' in attached) return attached;
        ref = attached.ref;
        const unstartable = await this.finishStart(inv, settings, attached.job, ref);
        if (unstartable) return unstartable;
      }
      if (owned) {
        const token = held?.token ?? (this.tokens ? this.tokens.tokenFor(ref) : randomBytes(32).toString('base64url'));
        forget = this.channel.expect(inv.callId, token, settings.params, onResult, ref);
        try {
          await this.core.createNamespacedSecret({ namespace: this.opts.namespace, body: buildCallSecret(inv, settings, token, ref) });
        } catch (err) {
          // With shared tokens a follower may have written it first (finishStart): the same Secret, nothing to
          // undo. One left by an earlier Job of this name (deleted, not yet collected) is not: as any failure.
          if (!(this.tokens && statusOf(err) === 409 && (await this.callSecretOwnedBy(inv.callId, ref)))) {
            await this.deleteJob(name);
            return { status: 'unavailable', error: `cannot create the call's Secret ${this.opts.namespace}/${name}: ${apiMessage(err)}` };
          }
        }
        if (!held) inv.observe?.({ kind: 'job.created', job: name, namespace: this.opts.namespace });
      } else {
        forget = this.channel.listen(inv.callId, onResult);
        this.log.info('attached to the Job of a call already started', { job: name, call_id: inv.callId });
      }
      // Only the process that started the Job stops it; a follower's client going away ends only its wait.
      const stopJob = (): Promise<void> => (owned ? this.deleteJob(name) : Promise.resolve());

      const deadline = Date.now() + (inv.tool.execution.timeout_seconds + (this.opts.startupGraceSeconds ?? 30)) * 1000;
      let reportedStart = false;
      let reportedRunning = false;
      let completedAt: number | undefined;
      let unreadableSince: number | undefined;
      // The pod is read less often than the Job: its phases and conditions (image missing, unschedulable).
      const pod = new PodProgress(this.core, this.opts.namespace, name, inv.observe);
      let podCheckedAt = 0;
      let storedCheckedAt = 0;
      const tolerance = this.opts.readErrorToleranceMs ?? DEFAULT_READ_ERROR_TOLERANCE_MS;
      for (;;) {
        if (envelope) {
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: envelope.status });
          return envelope.status === 'ok'
            ? { status: 'succeeded', result: envelope.result, durationMs: elapsed() }
            : { status: 'failed', exitCode: 1, error: envelope.error.message, durationMs: elapsed() };
        }
        if (inv.signal.aborted) {
          await (stopping ??= stopJob());
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: 'cancelled' });
          return { status: 'cancelled', durationMs: elapsed() };
        }
        if (Date.now() > deadline) {
          await stopJob();
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
          await stopJob();
          return { status: 'unavailable', error: `lost track of Job ${name}: ${apiMessage(err)}` };
        }
        if (job.metadata?.uid !== ref.uid) return { status: 'unavailable', error: `the Job ${name} of this call was replaced` };
        // A call held for a warm pod (by another replica): no pod of the Job's own, no Complete; its result (or
        // failure) is stored with the Job by whichever replica received it.
        const heldForWarmPod = !owned && isHeld(job);
        if (heldForWarmPod && Date.now() - storedCheckedAt >= 500) {
          storedCheckedAt = Date.now();
          envelope ??= await this.storedResult(inv.callId, ref);
          if (envelope) continue;
        }
        if (!completedAt && Date.now() - podCheckedAt >= 500) {
          podCheckedAt = Date.now();
          const fatal = await pod.check();
          if (fatal) {
            await stopJob();
            inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: 'pod_failed' });
            return { status: 'unavailable', error: fatal };
          }
        }
        if (!reportedStart && (job.status?.active ?? 0) + (job.status?.succeeded ?? 0) + (job.status?.failed ?? 0) > 0) {
          reportedStart = true;
          inv.observe?.({ kind: 'pod.started', job: name, namespace: this.opts.namespace });
        }
        if (!reportedRunning && (job.status?.ready ?? 0) > 0) {
          reportedRunning = true;
          inv.observe?.({ kind: 'pod.running', job: name, namespace: this.opts.namespace });
        }
        const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
        if (failed) {
          inv.observe?.({ kind: 'job.finished', job: name, namespace: this.opts.namespace, outcome: failed.reason ?? 'Failed' });
          if (failed.reason === 'DeadlineExceeded') {
            if (heldForWarmPod) {
              envelope ??= await this.storedResult(inv.callId, ref);
              if (envelope) continue;
              return { status: 'timeout', durationMs: elapsed() };
            }
            await stopJob();
            const never = pod.neverScheduled;
            if (never) return { status: 'unavailable', error: `the tool's pod was never scheduled before its deadline: ${never}` };
            return { status: 'timeout', durationMs: elapsed() };
          }
          const reported = await this.storedResult(inv.callId, ref);
          if (reported?.status === 'error') return { status: 'failed', exitCode: 1, error: reported.error.message, durationMs: elapsed() };
          const term = await this.terminatedState(name, inv.tool.execution.resources.memory);
          return { status: 'failed', exitCode: term?.exitCode ?? null, error: term?.message?.trim() || `Job ${name} failed: ${failed.message ?? failed.reason ?? ''}`, durationMs: elapsed() };
        }
        const complete = job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
        if (complete) {
          // The result normally arrives before the Job completes; allow a moment for it to land.
          completedAt ??= Date.now();
          // Posted to another replica, or to one since gone: it is stored with the Job.
          envelope ??= await this.storedResult(inv.callId, ref);
          if (envelope) continue;
          if (Date.now() - completedAt > 3000) return { status: 'failed', exitCode: 0, error: 'the tool finished without reporting a result', durationMs: elapsed() };
        }
        await pause();
      }
    } finally {
      inv.signal.removeEventListener('abort', onAbort);
      forget();
    }
  }

  /** A held Job given its pod: parallelism 1 and the tool's own deadline, as a cold Job's. */
  private async release(held: HeldCall): Promise<JobRef> {
    await this.batch.patchNamespacedJob(
      { name: held.ref.name, namespace: this.opts.namespace, body: [{ op: 'replace', path: '/spec/parallelism', value: 1 }, { op: 'remove', path: `/metadata/annotations/${WARM_POD_ANNOTATION.replace('/', '~1')}` }] },
      JSON_PATCH,
    );
    return held.ref;
  }

  /**
   * Following a Job whose create said AlreadyExists. The same decision again is a replayed attestation (and a
   * call without an Idempotency-Key is named by its decision): refused. Other arguments under the same key: a
   * conflict. Otherwise an idempotent retry: follow the Job to its result.
   */
  private async attach(inv: ToolInvocation, name: string): Promise<{ ref: JobRef; job: V1Job } | ToolOutcome> {
    let job: V1Job;
    try {
      job = await this.batch.readNamespacedJob({ name, namespace: this.opts.namespace });
    } catch (err) {
      return { status: 'unavailable', error: `cannot read the Job ${name} of this call: ${apiMessage(err)}` };
    }
    const annotations = job.metadata?.annotations ?? {};
    if (!inv.idempotent || annotations['toolgate.dev/decision-id'] === inv.decisionId) {
      return { status: 'refused', code: 'attestation_used', error: 'this decision was already used: an attested call runs once; send the call again through the gateway' };
    }
    if (annotations['toolgate.dev/arguments-digest'] !== argumentsDigest(inv.arguments)) {
      return { status: 'refused', code: 'idempotency_conflict', error: 'this Idempotency-Key was already used with different arguments' };
    }
    if (job.metadata?.deletionTimestamp || !job.metadata?.uid) return { status: 'unavailable', error: `the earlier run of this call (Job ${name}) is being cancelled; retry` };
    return { ref: { name, uid: job.metadata.uid }, job };
  }

  /**
   * A Job's pod waits for its call's Secret, which the replica that created the Job writes just after it. A
   * replica stopped in between would leave a Job that hangs to its deadline, and every retry of the call with
   * it. So a follower finishes the start: with shared tokens the Secret is the same from any replica (the token
   * derives from the Job, the arguments are this call's, checked by digest in attach), and AlreadyExists is the
   * usual answer. Arguments too large for the Secret are served only by the replica that started the call:
   * then a Job still without its Secret after a grace is deleted (its pod cannot have started) and the caller
   * told to retry, which starts the call afresh. Returns an outcome only when the call cannot go on.
   */
  private async finishStart(inv: ToolInvocation, settings: JobSettings, job: V1Job, ref: JobRef): Promise<ToolOutcome | undefined> {
    const finished = job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    if (!this.tokens || finished || isHeld(job)) return undefined;
    if (paramsInSecret(settings.params)) {
      const creator = job.metadata?.labels?.[EXECUTOR_LABEL] ?? settings.executor;
      try {
        await this.core.createNamespacedSecret({ namespace: this.opts.namespace, body: buildCallSecret(inv, { ...settings, executor: creator }, this.tokens.tokenFor(ref), ref) });
        this.log.warn('wrote the call Secret of a Job whose creator did not (stopped after creating the Job?)', { job: ref.name, call_id: inv.callId, creator });
      } catch (err) {
        // 409: the creator wrote it. Anything else: the poll loop follows the Job to its deadline as before.
        if (statusOf(err) !== 409) this.log.warn('cannot make sure the call Secret of a followed Job exists', { job: ref.name, cause: apiMessage(err) });
      }
      return undefined;
    }
    for (const deadline = Date.now() + (this.opts.secretGraceMs ?? DEFAULT_SECRET_GRACE_MS); ; ) {
      try {
        await this.core.readNamespacedSecret({ name: callSecretName(inv.callId), namespace: this.opts.namespace });
        return undefined;
      } catch (err) {
        if (statusOf(err) !== 404) return undefined;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      await this.batch.deleteNamespacedJob({ name: ref.name, namespace: this.opts.namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0, body: { preconditions: { uid: ref.uid } } });
    } catch (err) {
      if (statusOf(err) !== 404 && statusOf(err) !== 409) return { status: 'unavailable', error: `the Job ${ref.name} of this call never got its Secret and cannot be deleted: ${apiMessage(err)}` };
    }
    this.log.warn('deleted a Job whose creator never wrote its call Secret', { job: ref.name, call_id: inv.callId });
    return { status: 'unavailable', error: 'the replica that started this call stopped before its tool could start; send the call again' };
  }

  /** Whether the call's Secret is this Job's (owned by its uid), not one an earlier Job of the name left. */
  private async callSecretOwnedBy(callId: string, ref: JobRef): Promise<boolean> {
    try {
      const secret = await this.core.readNamespacedSecret({ name: callSecretName(callId), namespace: this.opts.namespace });
      return secret.metadata?.ownerReferences?.some((o) => o.kind === 'Job' && o.uid === ref.uid) ?? false;
    } catch {
      return false;
    }
  }

  /** The result stored with the Job by whichever replica received it; undefined when none (or no store). */
  private async storedResult(callId: string, job: JobRef): Promise<ResultEnvelope | undefined> {
    try {
      return await this.results?.load(callId, job);
    } catch (err) {
      this.log.warn('cannot read a stored result; retrying', { job: job.name, cause: apiMessage(err) });
      return undefined;
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
   * instance's: other replicas' Jobs are live calls. Not those of calls with an Idempotency-Key: their
   * result is stored with the Job when it finishes, for the retry that will ask for it (on any replica). The trade-off: a replaced pod comes back under a new name,
   * so its predecessor's Jobs are nobody's to reconcile; they run at most to activeDeadlineSeconds (their
   * result reaches no one) and go with their TTL.
   */
  async reconcile(): Promise<number> {
    const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY},${EXECUTOR_LABEL}=${this.opts.instance}`;
    const jobs = await this.batch.listNamespacedJob({ namespace: this.opts.namespace, labelSelector });
    let deleted = 0;
    for (const job of jobs.items) {
      const done = job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      if (done || !job.metadata?.name || job.metadata.labels?.[IDENTITY_LABEL] === 'idempotency-key') continue;
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
