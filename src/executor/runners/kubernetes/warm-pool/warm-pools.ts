import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ToolDefinition } from '../../../../catalog/tool-catalog.js';
import type { ResultEnvelope } from '../../../../runner/envelope.js';
import { errorMessage, type Logger } from '../../../../shared/logger.js';
import type { ToolInvocation, ToolOutcome } from '../../runner.js';
import { EXECUTOR_LABEL } from '../job-manifest.js';
import { describeTermination } from '../pod-progress.js';
import type { JobRef } from '../job-identity.js';
import type { ResultChannel } from '../result-channel.js';
import type { ClaimChannel } from './claim-channel.js';
import { buildWarmPod, buildWarmPodSecret, CALL_ID_LABEL, COMPONENT_LABEL, POOL_STATE_LABEL, WARM_POD_COMPONENT, warmPodLabels } from './warm-pod-manifest.js';

export type WarmPoolApi = Pick<CoreV1Api, 'createNamespacedPod' | 'deleteNamespacedPod' | 'patchNamespacedPod' | 'listNamespacedPod' | 'readNamespacedPod' | 'createNamespacedSecret'>;

export interface WarmPoolsOptions {
  core: WarmPoolApi;
  namespace: string;
  image: string;
  command: string[];
  defaultServiceAccount: string;
  /** This executor instance: it labels, claims and reconciles only its own pods. */
  instance: string;
  callbackBaseUrl: string;
  otelEndpoint?: string;
  /** The tools that opted in (execution.warm_pool.size > 0). */
  tools: ToolDefinition[];
  claims: ClaimChannel;
  results: ResultChannel;
  log: Logger;
  refillIntervalMs?: number;
}

interface PoolPod {
  name: string;
  tool: string;
  /** Labelled ready in the API (pool-state=ready): only such a pod is claimed (the claim tests that label). */
  ready: boolean;
  claimed: boolean;
  createdAt: number;
}

const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
/** After a refused create (quota, API down), the tool's pool waits this long before trying again. */
const CREATE_BACKOFF_MS = 5000;
/** Pods of one tool starting up (created, not yet waiting for a call) at once: more only compete for the node's CPU. */
const MAX_STARTING = 2;
/** A reserved pod that has not taken its call by then (it died, or stopped asking) loses it: the call runs as a Job. */
const TAKE_WITHIN_MS = 2000;

/** What a warm run needs from the call's lock (held-call.ts). */
export interface WarmCall {
  /** The result token, bound to the call's held Job. */
  token: string;
  job: JobRef;
  /** The result stored with the Job (posted to another replica), if any. */
  stored: () => Promise<ResultEnvelope | undefined>;
}

/**
 * Warm pools of single-use pods, one pool per tool that opts in. Each pod is created ahead of calls (hardened
 * as a Job's pod, see warm-pod-manifest.ts) and waits on the claim channel; a call claims one ready pod,
 * hands it the call (arguments, result URL and token) over that authenticated channel, and the pod runs the
 * tool once and exits; the pool deletes it and makes another in the background. A call finding no ready pod
 * runs as a Job instead (the caller's fallback): a pool only ever takes latency away.
 *
 * Invariants: a pod is claimed at most once (the claim is a compare-and-swap of its pool-state label in the
 * API, ready -> claimed (idle -> ready when its runner first waits on the claim channel), with the call id beside it, so no second executor, replica or restarted process,
 * can claim it again; and the claim channel delivers one claim per pod, ever); a claimed pod that fails is
 * reported as that call's failure, never retried on another pod; a pool never holds more than its size in
 * unclaimed pods, and a create refused by the namespace's quota backs off; at start an executor deletes the
 * warm pods it owned before (their claim tokens died with the old process).
 */
export class WarmPools {
  private readonly pods = new Map<string, PoolPod>();
  private readonly backoffUntil = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private kick: () => void = () => undefined;
  /** Warm calls running in this process now. */
  private running = 0;

  constructor(private readonly opts: WarmPoolsOptions) {}

  private get selector(): string {
    return `${COMPONENT_LABEL}=${WARM_POD_COMPONENT},${EXECUTOR_LABEL}=${this.opts.instance}`;
  }

  /** Deletes this instance's leftover warm pods, then keeps the pools full in the background. */
  async start(): Promise<number> {
    const left = await this.opts.core.listNamespacedPod({ namespace: this.opts.namespace, labelSelector: this.selector });
    for (const p of left.items) await this.deletePod(p.metadata?.name as string);
    if (left.items.length > 0) this.opts.log.warn('deleted warm pods left by a previous process', { count: left.items.length });
    this.loop = this.refillLoop();
    return left.items.length;
  }

  has(tool: string): boolean {
    return this.opts.tools.some((t) => t.name === tool);
  }

  /**
   * Reserves a ready pod of the tool's pool for this call, in this process only (synchronously: no other call
   * of this process can take it meanwhile), or undefined when none is ready (the call runs as a Job). A pod
   * whose request is held right now is preferred; one between two requests (its hold just expired) gets the
   * claim when it asks again.
   */
  reserve(tool: string): string | undefined {
    const candidates = [...this.pods.values()].filter((p) => p.tool === tool && !p.claimed && p.ready && this.opts.claims.waiting(p.name));
    const pod = candidates.find((p) => this.opts.claims.ready(p.name)) ?? candidates[0];
    if (!pod) return undefined;
    pod.claimed = true;
    return pod.name;
  }

  /** The call was not this process's to run after all (another replica holds its lock): the pod stays in the pool. */
  unreserve(podName: string): void {
    const pod = this.pods.get(podName);
    if (pod) pod.claimed = false;
  }

  /**
   * Claims the reserved pod in the API (a compare-and-swap of its pool-state label, ready -> claimed, with the
   * call id beside it). False when it cannot be (claimed by someone else, or gone): it goes, the pool makes
   * another, and the call runs elsewhere.
   */
  async claim(inv: ToolInvocation, podName: string): Promise<boolean> {
    try {
      await this.opts.core.patchNamespacedPod(
        {
          name: podName,
          namespace: this.opts.namespace,
          body: [
            { op: 'test', path: `/metadata/labels/${POOL_STATE_LABEL.replace('/', '~1')}`, value: 'ready' },
            { op: 'replace', path: `/metadata/labels/${POOL_STATE_LABEL.replace('/', '~1')}`, value: 'claimed' },
            { op: 'add', path: `/metadata/labels/${CALL_ID_LABEL.replace('/', '~1')}`, value: inv.callId },
          ],
        },
        JSON_PATCH,
      );
      return true;
    } catch (err) {
      this.opts.log.warn('could not claim a warm pod', { pod: podName, cause: errorMessage(err) });
      this.forget(podName);
      void this.deletePod(podName);
      return false;
    }
  }

  /**
   * Runs the call on the pod it claimed: hand-off, result, or the pod's failure; the pod is deleted after.
   * Undefined when the pod never took the call (it did not ask for it within TAKE_WITHIN_MS, and now never
   * will): the call has not run anywhere and may run as a Job.
   */
  async run(inv: ToolInvocation, podName: string, call: WarmCall): Promise<ToolOutcome | undefined> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const ns = this.opts.namespace;
    const base = this.opts.callbackBaseUrl.replace(/\/+$/, '');
    let envelope: ResultEnvelope | undefined;
    let wake: () => void = () => undefined;
    let arrived: () => void = () => undefined;
    // Resolves when the result is in: nothing the run awaits (a pod read on a slow API server) delays the answer.
    const resultIn = new Promise<undefined>((resolve) => (arrived = () => resolve(undefined)));
    const forget = this.opts.results.expect(
      inv.callId,
      call.token,
      JSON.stringify(inv.arguments),
      (e) => {
        envelope = e;
        arrived();
        wake();
      },
      call.job,
    );
    const onAbort = (): void => wake();
    inv.signal.addEventListener('abort', onAbort);
    const pause = (ms: number): Promise<void> =>
      new Promise<void>((resolve) => {
        if (envelope || inv.signal.aborted) return resolve();
        const t = setTimeout(() => resolve(), ms);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    this.running++;
    try {
      const offered = this.opts.claims.offer(podName, {
        call_id: inv.callId,
        arguments: inv.arguments,
        // The owner's own address: the pod's result reaches the process waiting for it with no detour; that
        // process stores it with the call's Job for every other replica (result-channel.ts).
        result_url: `${base}/internal/v1/calls/${inv.callId}/result`,
        result_token: call.token,
        ...(inv.traceparent ? { traceparent: inv.traceparent } : {}),
      });
      if (!offered) return undefined;
      const offeredAt = Date.now();
      let taken = this.opts.claims.delivered(podName);
      if (taken) inv.observe?.({ kind: 'pod.claimed', pod: podName, namespace: ns });
      const deadline = Date.now() + inv.tool.execution.timeout_seconds * 1000;
      let checkedAt = Date.now();
      for (;;) {
        if (!taken) {
          taken = this.opts.claims.delivered(podName);
          if (taken) inv.observe?.({ kind: 'pod.claimed', pod: podName, namespace: ns });
          // Never delivered, and now never will be: the call did not run; the caller runs it elsewhere.
          else if ((Date.now() - offeredAt > TAKE_WITHIN_MS || inv.signal.aborted) && this.opts.claims.revoke(podName)) {
            this.opts.log.warn('a warm pod did not take its call; it runs as a Job', { pod: podName, call_id: inv.callId });
            return inv.signal.aborted ? { status: 'cancelled', durationMs: elapsed() } : undefined;
          }
        }
        if (envelope) {
          const e = envelope as ResultEnvelope;
          inv.observe?.({ kind: 'pod.finished', pod: podName, namespace: ns, outcome: e.status });
          return e.status === 'ok' ? { status: 'succeeded', result: e.result, durationMs: elapsed() } : { status: 'failed', exitCode: 1, error: e.error.message, durationMs: elapsed() };
        }
        if (inv.signal.aborted) {
          inv.observe?.({ kind: 'pod.finished', pod: podName, namespace: ns, outcome: 'cancelled' });
          return { status: 'cancelled', durationMs: elapsed() };
        }
        if (Date.now() > deadline) {
          inv.observe?.({ kind: 'pod.finished', pod: podName, namespace: ns, outcome: 'timeout' });
          return { status: 'timeout', durationMs: elapsed() };
        }
        // The result comes over the channel; the pod's status is read only to notice a pod that died.
        if (taken && Date.now() - checkedAt >= 500) {
          checkedAt = Date.now();
          const failure = await Promise.race([this.failureOf(podName, inv.tool.execution.resources.memory), resultIn]);
          if (envelope) continue;
          if (failure) {
            // Posted elsewhere (a retried post after this process forgot it) and stored with the Job: that is the answer.
            envelope ??= await call.stored().catch(() => undefined);
            if (envelope) continue;
            inv.observe?.({ kind: 'pod.finished', pod: podName, namespace: ns, outcome: 'failed' });
            return { status: 'failed', ...failure, durationMs: elapsed() };
          }
        }
        await pause(taken ? 250 : 50);
      }
    } finally {
      this.running--;
      inv.signal.removeEventListener('abort', onAbort);
      forget();
      this.opts.claims.forget(podName);
      this.pods.delete(podName);
      // Single use: whatever happened, the pod goes (a running one is killed at once: its call is over). Not
      // awaited: the caller's answer does not wait for the API server (a failed delete is logged; the pod's
      // lifetime limit ends it anyway).
      void this.deletePod(podName);
      // Its replacement starts now that the call is over, not at the claim: a pod starting up competes for
      // CPU with the call.
      this.kick();
    }
  }

  /** A claimed pod that ended without a result: why (OOM-killed, crashed, gone). */
  private async failureOf(pod: string, memoryLimit: string): Promise<{ exitCode: number | null; error: string } | undefined> {
    let p: V1Pod;
    try {
      p = await this.opts.core.readNamespacedPod({ name: pod, namespace: this.opts.namespace });
    } catch (err) {
      return (err as { code?: number }).code === 404 ? { exitCode: null, error: `warm pod ${pod} disappeared during the call` } : undefined;
    }
    const term = p.status?.containerStatuses?.[0]?.state?.terminated;
    if (!term && p.status?.phase !== 'Failed') return undefined;
    // The result may still be in flight when the process has just exited: let it land first.
    await new Promise((r) => setTimeout(r, 1000));
    const message = term ? describeTermination(term, memoryLimit) : undefined;
    return { exitCode: term?.exitCode ?? null, error: message ?? `warm pod ${pod} ended without a result (${p.status?.reason ?? term?.reason ?? 'unknown'})` };
  }

  private async refillLoop(): Promise<void> {
    const interval = this.opts.refillIntervalMs ?? 1000;
    while (!this.stopped) {
      try {
        await this.sync();
        await this.fill();
      } catch (err) {
        this.opts.log.warn('warm pool refill failed; trying again', { cause: errorMessage(err) });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        this.kick = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Forgets pods that are gone or ended while idle (deleting the ended ones); deletes own pods it does not know. */
  private async sync(): Promise<void> {
    const list = await this.opts.core.listNamespacedPod({ namespace: this.opts.namespace, labelSelector: this.selector });
    const seen = new Set<string>();
    for (const p of list.items) {
      const name = p.metadata?.name as string;
      seen.add(name);
      const known = this.pods.get(name);
      const ended = p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded';
      if (!known && !p.metadata?.deletionTimestamp) await this.deletePod(name);
      else if (known && !known.claimed && ended) {
        this.forget(name);
        await this.deletePod(name);
      }
    }
    for (const pod of [...this.pods.values()]) if (!pod.claimed && !seen.has(pod.name) && Date.now() - pod.createdAt > 5000) this.forget(pod.name);
  }

  private async fill(): Promise<void> {
    for (const tool of this.opts.tools) {
      const size = tool.execution.warm_pool?.size ?? 0;
      if ((this.backoffUntil.get(tool.name) ?? 0) > Date.now()) continue;
      const own = (): PoolPod[] => [...this.pods.values()].filter((p) => p.tool === tool.name && !p.claimed);
      while (!this.stopped && own().length < size) {
        // Paced: a pod starting up takes CPU from the node (runtime, kubelet, the runner's start) that a running
        // call needs. While a warm call runs, wait for it to end (its end kicks this loop), unless this tool has
        // no ready pod left; and start at most MAX_STARTING at once (a pod's readiness kicks the loop too).
        const ready = own().filter((p) => p.ready).length;
        if (this.running > 0 && ready > 0) break;
        if (own().length - ready >= MAX_STARTING) break;
        if (!(await this.createPod(tool))) {
          this.backoffUntil.set(tool.name, Date.now() + CREATE_BACKOFF_MS);
          break;
        }
      }
    }
  }

  private async createPod(tool: ToolDefinition): Promise<boolean> {
    const name = `tg-w${randomBytes(10).toString('hex').slice(0, 19)}`;
    const ns = this.opts.namespace;
    const token = randomBytes(32).toString('base64url');
    const claimUrl = `${this.opts.callbackBaseUrl.replace(/\/+$/, '')}/internal/v1/warm/${name}/claim`;
    const manifest = buildWarmPod(tool, name, { ...this.opts, executor: this.opts.instance, claimUrl });
    this.opts.claims.register(name, token);
    this.pods.set(name, { name, tool: tool.name, ready: false, claimed: false, createdAt: Date.now() });
    try {
      const created = await this.opts.core.createNamespacedPod({ namespace: ns, body: manifest });
      await this.opts.core.createNamespacedSecret({ namespace: ns, body: buildWarmPodSecret({ name, uid: created.metadata?.uid as string, namespace: ns }, warmPodLabels(tool, this.opts.instance), token) });
      return true;
    } catch (err) {
      this.forget(name);
      await this.deletePod(name);
      this.opts.log.warn('cannot create a warm pod; the pool waits before trying again', { tool: tool.name, cause: errorMessage(err) });
      return false;
    }
  }

  /** The pod waits on the claim channel: say so in the API (pool-state idle -> ready), then it may be claimed. */
  readonly markReady = async (name: string): Promise<void> => {
    try {
      await this.opts.core.patchNamespacedPod(
        {
          name,
          namespace: this.opts.namespace,
          body: [
            { op: 'test', path: `/metadata/labels/${POOL_STATE_LABEL.replace('/', '~1')}`, value: 'idle' },
            { op: 'replace', path: `/metadata/labels/${POOL_STATE_LABEL.replace('/', '~1')}`, value: 'ready' },
          ],
        },
        JSON_PATCH,
      );
      const pod = this.pods.get(name);
      if (pod) pod.ready = true;
      this.kick();
    } catch (err) {
      this.opts.log.warn('could not mark a warm pod ready', { pod: name, cause: errorMessage(err) });
    }
  };

  private forget(name: string): void {
    this.pods.delete(name);
    this.opts.claims.forget(name);
  }

  private async deletePod(name: string): Promise<void> {
    try {
      await this.opts.core.deleteNamespacedPod({ name, namespace: this.opts.namespace, gracePeriodSeconds: 0 });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.opts.log.warn('could not delete a warm pod; its lifetime limit will end it', { pod: name, cause: errorMessage(err) });
    }
  }

  /** Stops refilling and deletes every pod of the pools (claimed ones belong to calls that are ending). */
  async close(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop;
    for (const name of [...this.pods.keys()]) {
      this.forget(name);
      await this.deletePod(name);
    }
  }
}
