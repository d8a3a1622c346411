import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_NS } from '../support/kube/execution-cluster.js';
import { recordPods } from '../support/kube/pod-recorder.js';
import { invokeTool, startRealNodeSuite, type RealNodeSuite } from '../support/kube/real-node-suite.js';
import { waitUntil } from '../support/wait-until.js';
import type { Response as StackResponse, Stack } from './stack.js';

/**
 * Run once with several executor replicas, on a real node (real-node.ts): three executors behind one Envoy,
 * their Jobs posting results through a stand-in for the executor Service. The apiserver is the lock (a Job named
 * after the call, held without a pod for a warm call); results live with the Job.
 */
const INSTANCE = 'toolgate-executor-7f9c6d5b8-r0';

describe('Kubernetes Job runner with three executor replicas', () => {
  let suite: RealNodeSuite;
  let stack: Stack;
  let batch: BatchV1Api;
  let core: CoreV1Api;
  let jwt: string;

  beforeAll(async () => {
    // sandbox_info (it answers with its pod's name) on a warm pool of one small pod per replica.
    suite = await startRealNodeSuite({
      instance: INSTANCE,
      editCatalog: (tools) => tools.push(invokeTool('sandbox_info', { timeout_seconds: 20, resources: { cpu: '100m', memory: '128Mi' }, warm_pool: { size: 1 } })),
      stack: { executorReplicas: 3 },
    });
    ({ stack, jwt } = suite);
    batch = suite.cluster.admin.makeApiClient(BatchV1Api);
    core = suite.cluster.admin.makeApiClient(CoreV1Api);
  }, 600_000);

  afterAll(async () => {
    await suite?.stop();
  });

  /** Tool-call pods the node was given (each runs its container once): the count of real executions. */
  const podsStarted = async (): Promise<number> => (await core.listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'app.kubernetes.io/component=tool-call' })).items.length;
  const jobsFor = async (callId: string): Promise<V1Job[]> => (await batch.listNamespacedJob({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;
  const callsSeenBy = async (i: number): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${stack.executors[i]?.opsPort}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('toolgate_executor_calls_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };
  const creatorOf = (job: V1Job | undefined): number => stack.executors.findIndex((e) => e.instance === job?.metadata?.labels?.['toolgate.dev/executor']);
  const call = (key: string, seconds: number): Promise<StackResponse> => stack.call('/v1/tools/sleep', { seconds }, { jwt, headers: { 'idempotency-key': key } });
  /** Envoy answers 503 for a call whose replica died under it; the agent retries with the same key. */
  const untilAnswered = async (res: StackResponse, key: string, seconds: number): Promise<StackResponse> => (res.status === 503 ? call(key, seconds) : res);

  it('the same Idempotency-Key to all three at once, and again after killing the replica that took it: one Job, one run, one result', async () => {
    const key = `replicas-${Date.now()}`;
    const started = await podsStarted();
    const seen = await Promise.all([0, 1, 2].map(callsSeenBy));
    const first = await Promise.all([1, 2, 3, 4, 5, 6].map(() => call(key, 1.5)));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // Envoy spread them: every replica answered some.
    const after = await Promise.all([0, 1, 2].map(callsSeenBy));
    expect(after.map((n, i) => n - (seen[i] as number)).every((n) => n >= 1)).toBe(true);
    const callId = first[0]?.json.call_id as string;
    expect(new Set(first.map((r) => JSON.stringify([r.json.call_id, r.json.result])))).toEqual(new Set([JSON.stringify([callId, { slept: 1.5 }])]));
    const jobs = await jobsFor(callId);
    expect(jobs).toHaveLength(1);
    expect(await podsStarted()).toBe(started + 1);

    const creator = creatorOf(jobs[0]);
    expect(creator).toBeGreaterThanOrEqual(0);
    await stack.killExecutor(creator);
    const again = await Promise.all([1, 2, 3, 4].map(() => call(key, 1.5)));
    expect(again.map((r) => [r.status, r.json.call_id, r.json.result])).toEqual(again.map(() => [200, callId, { slept: 1.5 }]));
    expect(await jobsFor(callId)).toHaveLength(1);
    expect(await podsStarted()).toBe(started + 1);
    await stack.startExecutor(creator);
    // Restarted, it leaves the call's Job (the lock and its result) alone, and answers from it too.
    expect(await jobsFor(callId)).toHaveLength(1);
    const fromRestarted = await fetchDirect(stack.executors[creator]?.port as number, { key, seconds: 1.5 });
    expect([fromRestarted.status, fromRestarted.body.call_id, fromRestarted.body.result]).toEqual([200, callId, { slept: 1.5 }]);
  });

  it('a replica killed while its Job runs: the Job finishes, its result lands on a live replica, every answer is that result', async () => {
    const key = `killed-mid-run-${Date.now()}`;
    const started = await podsStarted();
    const pending = [1, 2, 3].map(() => call(key, 4));
    let job: V1Job | undefined;
    for (const deadline = Date.now() + 20_000; !job && Date.now() < deadline; ) {
      job = (await batch.listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.find((j) => !j.status?.conditions?.length && j.metadata?.labels?.['toolgate.dev/identity'] === 'idempotency-key');
      if (!job) await new Promise((r) => setTimeout(r, 100));
    }
    if (!job) throw new Error('no Job seen');
    const creator = creatorOf(job);
    await stack.killExecutor(creator);
    const answers = await Promise.all(pending.map(async (p) => untilAnswered(await p, key, 4)));
    expect(answers.map((r) => [r.status, r.json.result ?? r.text])).toEqual(answers.map(() => [200, { slept: 4 }]));
    const callId = job.metadata?.labels?.['toolgate.dev/call-id'] as string;
    expect(new Set(answers.map((r) => r.json.call_id))).toEqual(new Set([callId]));
    expect(await jobsFor(callId)).toHaveLength(1);
    expect(await podsStarted()).toBe(started + 1);
    // The result is stored with the Job, in a Secret it owns.
    const secret = await core.readNamespacedSecret({ namespace: EXEC_NS, name: `tg-${callId}-result` });
    expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Job', uid: job.metadata?.uid });
    await stack.startExecutor(creator);
  }, 120_000);

  /** Straight to one replica with the headers only the gateway sets and an attestation made with the shared key. */
  const fetchDirect = async (port: number, o: { key?: string; seconds: number; decisionId?: string; attestedAtMs?: number }): Promise<{ status: number; body: Record<string, any> }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await suite.direct('sleep', { seconds: o.seconds }, { port, ...(o.key ? { headers: { 'idempotency-key': o.key } } : {}), ...(o.decisionId ? { decisionId: o.decisionId } : {}), ...(o.attestedAtMs ? { attestedAtMs: o.attestedAtMs } : {}) });
    const json = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    return { status: res.status, body: 'error' in json ? json.error : json };
  };

  it('a replayed attestation is refused, on the replica that ran it and on any other; an expired one too', async () => {
    const ports = stack.executors.map((e) => e.port);
    const started = await podsStarted();
    const decisionId = `replayed-${crypto.randomUUID()}`;
    const once = await fetchDirect(ports[0] as number, { seconds: 0, decisionId });
    expect(once.status).toBe(200);
    for (const port of ports) {
      const replay = await fetchDirect(port, { seconds: 0, decisionId });
      expect([replay.status, replay.body.code]).toEqual([403, 'attestation_used']);
    }
    // With an Idempotency-Key: the first request's decision replayed is refused too; a retry's own decision
    // (what the gateway gives every retry) is answered from the one run.
    const key = `replay-key-${Date.now()}`;
    const keyed = `replayed-keyed-${crypto.randomUUID()}`;
    expect((await fetchDirect(ports[1] as number, { key, seconds: 0, decisionId: keyed })).status).toBe(200);
    const replayed = await fetchDirect(ports[2] as number, { key, seconds: 0, decisionId: keyed });
    expect([replayed.status, replayed.body.code]).toEqual([403, 'attestation_used']);
    const retry = await fetchDirect(ports[2] as number, { key, seconds: 0 });
    expect([retry.status, retry.body.result]).toEqual([200, { slept: 0 }]);
    expect(await podsStarted()).toBe(started + 2);
    // Past its expiry (20 s, with 5 s of clock skew allowed), an attestation is refused before anything runs.
    const stale = await fetchDirect(ports[0] as number, { seconds: 0, attestedAtMs: Date.now() - 26_000 });
    expect([stale.status, stale.body.code]).toEqual([403, 'attestation_expired']);
    expect(await podsStarted()).toBe(started + 2);
  });

  /** Warm pods of sandbox_info (their pool state: ready, or claimed by a call) not being deleted. */
  const warmPods = async (): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'app.kubernetes.io/component=warm-pod,toolgate.dev/tool=sandbox-info' })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const readyWarm = async (): Promise<string[]> => (await warmPods()).filter((p) => p.metadata?.labels?.['toolgate.dev/pool-state'] === 'ready').map((p) => p.metadata?.labels?.['toolgate.dev/executor'] as string);
  const infoCall = async (port: number, key: string): Promise<{ status: number; callId: string; pod: string }> => {
    const res = await suite.direct('sandbox_info', {}, { port, headers: { 'idempotency-key': key } });
    const body = (await res.json()) as { call_id?: string; result?: { hostname?: string }; error?: unknown };
    return { status: res.status, callId: body.call_id ?? JSON.stringify(body.error), pod: body.result?.hostname ?? '' };
  };

  it('warm pools on: the same Idempotency-Key to all three at once, and again after killing the replica that took it: one lock, one pod, one run, one result', async () => {
    // Every replica has a warm pod ready: each could run the call at once, so only the lock keeps it to one run.
    await waitUntil('a warm pod ready on each replica', async () => new Set(await readyWarm()).size === 3, 120_000, 200);
    const readyBefore = new Set((await warmPods()).map((p) => p.metadata?.name));
    const recorder = await recordPods(suite.cluster.admin, EXEC_NS);
    try {
      const ports = stack.executors.map((e) => e.port);
      const key = `warm-replicas-${Date.now()}`;
      const first = await Promise.all([...ports, ...ports].map((port) => infoCall(port, key)));
      expect(first.map((r) => r.status)).toEqual(first.map(() => 200));
      const callId = first[0]?.callId as string;
      const pod = first[0]?.pod as string;
      // One run answered all six: the same call and the same pod, a warm one.
      expect(new Set(first.map((r) => `${r.callId} ${r.pod}`))).toEqual(new Set([`${callId} ${pod}`]));
      expect(pod).toMatch(/^tg-w[0-9a-f]{19}$/);
      // Every pod that ever ran this call (a warm pod claimed for it, or a Job's): that one only.
      const ranIt = (): string[] => recorder.pods().filter((p) => p.metadata?.labels?.['toolgate.dev/call-id'] === callId || p.metadata?.labels?.['job-name'] === `tg-${callId}`).map((p) => p.metadata?.name as string);
      expect(ranIt()).toEqual([pod]);
      // The lock: one Job named after the call, held (no pod of its own), its result stored in a Secret it owns.
      const jobs = await jobsFor(callId);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]?.spec?.parallelism).toBe(0);
      const secret = await core.readNamespacedSecret({ namespace: EXEC_NS, name: `tg-${callId}-result` });
      expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Job', uid: jobs[0]?.metadata?.uid });
      // The replica holding the lock ran it on its own pod; the two others gave theirs back to their pools.
      const creator = creatorOf(jobs[0]);
      expect(creator).toBeGreaterThanOrEqual(0);
      expect(recorder.pods().find((p) => p.metadata?.name === pod)?.metadata?.labels?.['toolgate.dev/executor']).toBe(stack.executors[creator]?.instance);
      const others = (await warmPods()).filter((p) => p.metadata?.labels?.['toolgate.dev/executor'] !== stack.executors[creator]?.instance && readyBefore.has(p.metadata?.name));
      expect(others.map((p) => p.metadata?.labels?.['toolgate.dev/pool-state'])).toEqual(['ready', 'ready']);

      await stack.killExecutor(creator);
      const live = ports.filter((_, i) => i !== creator);
      const again = await Promise.all([...live, ...live].map((port) => infoCall(port, key)));
      expect(again.map((r) => [r.status, r.callId, r.pod])).toEqual(again.map(() => [200, callId, pod]));
      expect(await jobsFor(callId)).toHaveLength(1);
      expect(ranIt()).toEqual([pod]);
      await stack.startExecutor(creator);
    } finally {
      recorder.stop();
    }
  }, 240_000);
});
