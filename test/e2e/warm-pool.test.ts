import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_NS, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { invokeTool, startRealNodeSuite, type RealNodeSuite } from '../support/kube/real-node-suite.js';
import type { Stack } from './stack.js';

/**
 * Warm pools of single-use pods on a real node: tools that opt in (execution.warm_pool) run on a pre-started
 * pod claimed for the call; each pod serves exactly one call and is replaced. The call's lock is its Job, held
 * without a pod of its own (parallelism 0) while the warm pod runs it.
 */
const INSTANCE = 'toolgate-executor-warm-0';
const POOL = 2;

describe('warm pool of single-use pods on a real node', () => {
  let suite: RealNodeSuite;
  let cluster: ExecutionCluster;
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    // Warm pods hold their requests while they wait: small ones, so that six fit this 2-CPU node with room for Jobs.
    const small = { cpu: '100m', memory: '128Mi' };
    suite = await startRealNodeSuite({
      instance: INSTANCE,
      editCatalog: (tools) => {
        for (const t of tools) {
          if (t.name === 'echo') Object.assign(t.execution, { resources: small, warm_pool: { size: 1 } });
          if (t.name === 'sleep') Object.assign(t.execution, { timeout_seconds: 4, resources: small, warm_pool: { size: 1 } });
        }
        tools.push(invokeTool('sandbox_info', { timeout_seconds: 20, resources: small, warm_pool: { size: POOL } }), invokeTool('allocate_memory', { timeout_seconds: 20, resources: { cpu: '100m', memory: '64Mi' }, warm_pool: { size: 1 } }));
      },
      stack: { maxInFlight: 8, executorConfig: { max_in_flight_per_agent: 8 } },
    });
    ({ cluster, stack, jwt } = suite);
  }, 600_000);

  afterAll(async () => {
    await suite?.stop();
  });

  const core = (): CoreV1Api => cluster.admin.makeApiClient(CoreV1Api);
  const warmPods = async (tool: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `app.kubernetes.io/component=warm-pod,toolgate.dev/tool=${tool.replaceAll('_', '-')}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const readyWarm = async (tool: string): Promise<number> => (await warmPods(tool)).filter((p) => p.metadata?.labels?.['toolgate.dev/pool-state'] === 'ready').length;
  const jobsFor = async (callId: string): Promise<V1Job[]> => (await cluster.admin.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;

  const direct = (tool: string, args: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> => suite.direct(tool, args, { headers, ...(signal ? { signal } : {}) });
  /** Pods of the call's own Job: none when a warm pod ran it (the Job is only its lock, held without a pod). */
  const jobPodsFor = async (callId: string): Promise<number> => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `job-name=tg-${callId}` })).items.length;

  it('through Envoy: a call of a pooled tool runs on a warm pod (no Job), fast, and the pod is replaced', async () => {
    await waitFor(async () => (await readyWarm('echo')) === 1, 60_000);
    const [before] = await warmPods('echo');
    const t0 = Date.now();
    const res = await stack.call('/v1/tools/echo', { message: 'warm' }, { jwt });
    const ms = Date.now() - t0;
    expect(res.status).toBe(200);
    expect(res.json.result).toEqual({ message: 'warm', length: 4 });
    // Its lock, the call's Job, held: no pod of its own.
    const [lock] = await jobsFor(res.json.call_id);
    expect(lock?.spec?.parallelism).toBe(0);
    expect(await jobPodsFor(res.json.call_id)).toBe(0);
    expect(ms).toBeLessThan(1500);
    // The pod that served it is gone, and another one waits instead.
    await waitFor(async () => (await warmPods('echo')).every((p) => p.metadata?.name !== before?.metadata?.name), 30_000);
    await waitFor(async () => (await readyWarm('echo')) === 1, 60_000);
  });

  it('a pod never serves two calls: as many distinct pods as calls, and calls beyond the ready pods run as Jobs', async () => {
    await waitFor(async () => (await readyWarm('sandbox_info')) === POOL, 60_000);
    const served: { pod: string; callId: string }[] = [];
    for (let i = 0; i < 4; i++) {
      await waitFor(async () => (await readyWarm('sandbox_info')) >= 1, 60_000);
      const res = await direct('sandbox_info', {});
      expect(res.status).toBe(200);
      const body = (await res.json()) as { call_id: string; result: { hostname: string; uid: number; root_writable: boolean } };
      expect(body.result).toMatchObject({ uid: 65532, root_writable: false });
      served.push({ pod: body.result.hostname, callId: body.call_id });
    }
    // Concurrent calls, more than the pool: each still gets a pod of its own (warm or a Job's).
    const burst = (await Promise.all([1, 2, 3, 4].map(() => direct('sandbox_info', {}).then((r) => r.json())))) as { call_id: string; result: { hostname: string } }[];
    for (const b of burst) served.push({ pod: b.result.hostname, callId: b.call_id });
    expect(new Set(served.map((s) => s.callId)).size).toBe(8);
    expect(new Set(served.map((s) => s.pod)).size).toBe(8);
    expect(served.slice(0, 4).every((s) => /^tg-w[0-9a-f]{19}$/.test(s.pod))).toBe(true);
    // The pool refills to its size, never above it.
    await waitFor(async () => (await readyWarm('sandbox_info')) === POOL, 60_000);
    expect((await warmPods('sandbox_info')).length).toBe(POOL);
  });

  it('a claimed pod that exceeds its memory limit fails its call as OOM-killed, and is not retried elsewhere', async () => {
    await waitFor(async () => (await readyWarm('allocate_memory')) === 1, 60_000);
    const res = await direct('allocate_memory', { mebibytes: 256, hold_seconds: 5 });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string; call_id: string } };
    expect(body.error.message).toMatch(/OOM-killed/);
    expect(await jobPodsFor(body.error.call_id)).toBe(0);
    const claimed = (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${body.error.call_id}` })).items;
    expect(claimed.length).toBeLessThanOrEqual(1);
  });

  it('timeout and cancel on a warm pod leave no pod', async () => {
    await waitFor(async () => (await readyWarm('sleep')) === 1, 60_000);
    const res = await direct('sleep', { seconds: 30 });
    expect(res.status).toBe(504);
    const { error } = (await res.json()) as { error: { call_id: string } };
    await waitFor(async () => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${error.call_id}` })).items.length === 0, 30_000);

    await waitFor(async () => (await readyWarm('sleep')) === 1, 60_000);
    const controller = new AbortController();
    const pending = direct('sleep', { seconds: 30 }, { 'idempotency-key': `warm-cancel-${Date.now()}` }, controller.signal).catch((e: unknown) => e);
    let callId: string | undefined;
    await waitFor(async () => {
      callId = (await warmPods('sleep')).find((p) => p.metadata?.labels?.['toolgate.dev/pool-state'] === 'claimed')?.metadata?.labels?.['toolgate.dev/call-id'];
      return callId !== undefined;
    }, 10_000);
    controller.abort();
    await pending;
    await waitFor(async () => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items.length === 0, 30_000);
  });

  it('executor killed mid-call: the claimed pod is deleted at restart, the call runs nowhere else, the pool is rebuilt', async () => {
    await waitFor(async () => (await readyWarm('sleep')) === 1, 60_000);
    const oldPods = new Set((await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'app.kubernetes.io/component=warm-pod' })).items.map((p) => p.metadata?.name));
    const pending = direct('sleep', { seconds: 3.5 }).catch((e: unknown) => e);
    let callId: string | undefined;
    await waitFor(async () => {
      callId = (await warmPods('sleep')).find((p) => p.metadata?.labels?.['toolgate.dev/pool-state'] === 'claimed')?.metadata?.labels?.['toolgate.dev/call-id'];
      return callId !== undefined;
    }, 10_000);
    await stack.restartExecutor({ kill: true });
    await pending;
    // Every pod of the old process is gone (the claimed one with its call), and no Job or other pod took the call.
    await waitFor(async () => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'app.kubernetes.io/component=warm-pod' })).items.every((p) => !oldPods.has(p.metadata?.name)), 30_000);
    expect(await jobPodsFor(callId as string)).toBe(0);
    expect((await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items).toEqual([]);
    // The new process fills its pools again.
    await waitFor(async () => (await readyWarm('sleep')) === 1 && (await readyWarm('sandbox_info')) === POOL, 60_000);
  });

  it("never exceeds the namespace's quota: a refused replacement waits, and the pool refills when there is room", async () => {
    await waitFor(async () => (await readyWarm('echo')) === 1, 60_000);
    // A quota of no new pods: the pods there stay, any new one is refused.
    await core().createNamespacedResourceQuota({ namespace: EXEC_NS, body: { metadata: { name: 'pods' }, spec: { hard: { pods: '0' } } } });
    const podsNow = async (): Promise<number> => (await core().listNamespacedPod({ namespace: EXEC_NS })).items.filter((p) => !p.metadata?.deletionTimestamp && (p.status?.phase === 'Pending' || p.status?.phase === 'Running')).length;
    try {
      await waitFor(async () => (await core().readNamespacedResourceQuota({ namespace: EXEC_NS, name: 'pods' })).status?.hard?.pods === '0', 30_000);
      const pods = await podsNow();
      const res = await stack.call('/v1/tools/echo', { message: 'last warm one' }, { jwt });
      expect(res.status).toBe(200);
      // Its replacement is refused by the quota: the pool stays short, no pod is added.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await readyWarm('echo')).toBe(0);
      expect(await podsNow()).toBeLessThan(pods);
      // A call meanwhile runs as a Job; its pod is refused by the quota too: it ends at the Job's deadline (504), not hung.
      const meanwhile = await stack.call('/v1/tools/echo', { message: 'no room' }, { jwt });
      expect([200, 504]).toContain(meanwhile.status);
    } finally {
      await core().deleteNamespacedResourceQuota({ namespace: EXEC_NS, name: 'pods' });
    }
    await waitFor(async () => (await readyWarm('echo')) === 1, 60_000);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}
