import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attest, loadAttestationKey } from '../../src/shared/decision-attestation.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { EXEC_NS, startExecutionCluster, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { startStack, type Response as StackResponse, type Stack } from './stack.js';
import { join } from 'node:path';

/**
 * Run once with several executor replicas, on a real node (real-node.ts): three executors behind one Envoy,
 * their Jobs posting results through a stand-in for the executor Service. The apiserver is the lock (a Job named after the call); results live with the Job.
 */
const INSTANCE = 'toolgate-executor-7f9c6d5b8-r0';

describe('Kubernetes Job runner with three executor replicas', () => {
  let cluster: ExecutionCluster;
  let stack: Stack;
  let batch: BatchV1Api;
  let core: CoreV1Api;
  let jwt: string;
  let decisionKey: Buffer;

  beforeAll(async () => {
    cluster = await startExecutionCluster(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
    batch = cluster.admin.makeApiClient(BatchV1Api);
    core = cluster.admin.makeApiClient(CoreV1Api);
    stack = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, instance: INSTANCE, ...cluster.runner }, executorReplicas: 3 });
    jwt = await stack.jwtFor('ops-bot');
    decisionKey = await loadAttestationKey(stack.creds.decisionKeyPath);
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
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
    const body = JSON.stringify({ seconds: o.seconds });
    const decisionId = o.decisionId ?? `test-decision-${crypto.randomUUID()}`;
    const attestation = attest(decisionKey, { decisionId, agentId: 'ops-bot', agentMethod: 'jwt', tool: 'sleep', policyRevision: 'test-rev', body: Buffer.from(body) }, { nowMs: o.attestedAtMs ?? Date.now() });
    const res = await fetch(`http://127.0.0.1:${port}/v1/tools/sleep`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-toolgate-decision-id': decisionId,
        'x-toolgate-agent-id': 'ops-bot',
        'x-toolgate-agent-auth': 'jwt',
        'x-toolgate-tool': 'sleep',
        'x-toolgate-policy-revision': 'test-rev',
        'x-toolgate-attestation': attestation,
        ...(o.key ? { 'idempotency-key': o.key } : {}),
      },
      body,
    });
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
});
