import { AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_NS, TARGET_NS, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { PAUSE_IMAGE } from '../support/kube/node-images.js';
import { invokeTool, startRealNodeSuite, type RealNodeSuite } from '../support/kube/real-node-suite.js';
import type { Stack } from './stack.js';

/**
 * The Kubernetes Job runner on a real node: a real kube-apiserver, etcd, kube-controller-manager,
 * kube-scheduler and kubelet, with containerd and runc (test/support/kube/real-node.ts). Each call's Job
 * runs the real src/runner in a real container of the runner image built from this checkout, under the
 * hardened pod spec. The executor runs as a ServiceAccount that may only manage Jobs (and read their pods)
 * in the execution namespace; each tool runs as its own ServiceAccount with exactly its catalog verbs.
 */
const SLEEP_TIMEOUT_S = 6;
/** The executor's pod name (POD_NAME, as the downward API sets it): its Jobs are labelled with it. */
const INSTANCE = 'toolgate-executor-5d8c7b9f4-x2x7q';

describe('Kubernetes Job runner on a real node', () => {
  let suite: RealNodeSuite;
  let cluster: ExecutionCluster;
  let stack: Stack;
  let admin: KubeConfig;
  let executorKubeconfig: string;
  let jwt: string;

  beforeAll(async () => {
    // A catalog for this suite: the default one, with a short sleep timeout, a tool that crashes, one that
    // reports its sandbox and one that exceeds its memory limit. The Job's deadline counts from the Job's
    // start, so it includes scheduling and container start (about 2 s on a busy 2-core machine).
    suite = await startRealNodeSuite({
      instance: INSTANCE,
      editCatalog: (tools) => {
        for (const t of tools) if (t.name === 'sleep') t.execution.timeout_seconds = SLEEP_TIMEOUT_S;
        tools.push(
          invokeTool('fail', { timeout_seconds: 10 }),
          invokeTool('sandbox_info', { timeout_seconds: 20 }),
          invokeTool('allocate_memory', { timeout_seconds: 20, resources: { cpu: '500m', memory: '64Mi' } }),
          invokeTool('needs_a_huge_node', { timeout_seconds: 3, resources: { cpu: '64', memory: '64Mi' } }),
        );
      },
      stack: { maxInFlight: 3, executorConfig: { max_in_flight_per_agent: 3 } },
    });
    ({ cluster, stack, jwt } = suite);
    ({ admin, executorKubeconfig } = cluster);
  }, 600_000);

  afterAll(async () => {
    await suite?.stop();
  });

  const batch = (): BatchV1Api => admin.makeApiClient(BatchV1Api);
  const core = (): CoreV1Api => admin.makeApiClient(CoreV1Api);
  const secretsFor = async (callId: string): Promise<number> => (await core().listNamespacedSecret({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items.length;
  const jobsFor = async (callId: string): Promise<V1Job[]> => (await batch().listNamespacedJob({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;
  const podsFor = async (callId: string): Promise<V1Pod[]> => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;
  /** Tool-call pods of this executor that were ever created and still exist (the real count of executions). */
  const toolPods = async (): Promise<V1Pod[]> => (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/executor=${INSTANCE}` })).items;
  /** Pods whose container has not ended (the node still runs or is about to run them). */
  const livePods = async (tool?: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/executor=${INSTANCE}${tool ? `,toolgate.dev/tool=${tool}` : ''}` })).items.filter((p) => p.status?.phase === 'Pending' || p.status?.phase === 'Running');
  /** The call's pod once its container has ended (the result is posted just before the process exits). */
  const endedPod = async (callId: string): Promise<V1Pod> => {
    let pod: V1Pod | undefined;
    await waitFor(async () => {
      [pod] = await podsFor(callId);
      return pod?.status?.containerStatuses?.[0]?.state?.terminated !== undefined;
    }, 30_000);
    return pod as V1Pod;
  };
  /** Containers of a pod (its sandbox included) that containerd still runs: 0 once the kubelet stopped them (exited ones wait for its GC). */
  const containersOf = async (pod: string): Promise<number> => {
    const ids = new Set((await cluster.node.ctr(['containers', 'list', '-q', `labels."io.kubernetes.pod.name"==${pod}`])).split('\n').filter(Boolean));
    const running = (await cluster.node.ctr(['tasks', 'list'])).split('\n').filter((l) => / RUNNING\s*$/.test(l)).map((l) => l.split(/\s+/)[0]);
    return running.filter((id) => id !== undefined && ids.has(id)).length;
  };

  /** Straight to the executor (real-node-suite.ts): runner behaviour, not authorization. */
  const direct = (tool: string, args: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> => suite.direct(tool, args, { headers, ...(signal ? { signal } : {}) });

  it('the executor service account manages Jobs in its namespace and nothing else', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(executorKubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    // Secrets in its namespace: read one by name (a call's stored result), never list them.
    await expect(core.readNamespacedSecret({ namespace: EXEC_NS, name: 'anything' })).rejects.toMatchObject({ code: 404 });
    await expect(core.listNamespacedSecret({ namespace: EXEC_NS })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedSecret({ namespace: TARGET_NS })).rejects.toMatchObject({ code: 403 });
    await expect(kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: TARGET_NS })).rejects.toMatchObject({ code: 403 });
    await expect(kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: TARGET_NS, name: 'api-server' })).rejects.toMatchObject({ code: 403 });
    expect((await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: EXEC_NS })).items).toBeDefined();
  });

  it('through Envoy: k8s_get_deployment returns the real Deployment, run in a real container under the tool account', async () => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: TARGET_NS, name: 'api-server' }, { jwt });
    expect(res.status).toBe(200);
    expect(res.json.result).toMatchObject({ name: 'api-server', namespace: TARGET_NS, replicas: 1, images: [PAUSE_IMAGE] });
    const [job] = await jobsFor(res.json.call_id);
    expect(job?.spec?.template.spec?.serviceAccountName).toBe('toolgate-tool-k8s-get-deployment');
    // One pod ran it, in the runner image, on the node, and its container ended cleanly.
    const pod = await endedPod(res.json.call_id);
    expect(await podsFor(res.json.call_id)).toHaveLength(1);
    expect(pod.spec?.nodeName).toBe(cluster.node.nodeName);
    expect(pod.status?.containerStatuses?.[0]).toMatchObject({ image: cluster.runner.image, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
  });

  it('through Envoy: k8s_scale_deployment changes the real Deployment', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: TARGET_NS, name: 'api-server', replicas: 3 }, { jwt });
    expect(res.status).toBe(200);
    expect(res.json.result).toMatchObject({ previousReplicas: 1, replicas: 3 });
    const d = await admin.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: TARGET_NS, name: 'api-server' });
    expect(d.spec?.replicas).toBe(3);
    // The real controllers and kubelet act on it: three pods come up.
    await waitFor(async () => ((await admin.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: TARGET_NS, name: 'api-server' })).status?.readyReplicas ?? 0) === 3, 60_000);
  });

  it('through Envoy: a denied call creates no Job and no process', async () => {
    const jobsBefore = (await batch().listNamespacedJob({ namespace: EXEC_NS })).items.length;
    const podsBefore = (await toolPods()).length;
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: TARGET_NS, name: 'api-server', replicas: 11 }, { jwt });
    expect(res.status).toBe(403);
    await new Promise((r) => setTimeout(r, 500));
    expect((await batch().listNamespacedJob({ namespace: EXEC_NS })).items.length).toBe(jobsBefore);
    expect((await toolPods()).length).toBe(podsBefore);
  });

  it('creates the Job as specified: deadline, TTL, no retries, tool account, locked-down pod, call labels', async () => {
    const decisionId = `test-decision-${crypto.randomUUID()}`;
    const pending = direct('sleep', { seconds: 1 }, { 'x-toolgate-decision-id': decisionId, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    let job: V1Job | undefined;
    for (let i = 0; i < 50 && !job; i++) {
      job = (await batch().listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.find((j) => !j.status?.conditions?.length);
      if (!job) await new Promise((r) => setTimeout(r, 100));
    }
    expect((await pending).status).toBe(200);
    if (!job) throw new Error('no Job seen');
    const spec = job.spec;
    expect(spec).toMatchObject({ ttlSecondsAfterFinished: 30, activeDeadlineSeconds: SLEEP_TIMEOUT_S, backoffLimit: 0 });
    const pod = spec?.template.spec;
    expect(pod).toMatchObject({ restartPolicy: 'Never', serviceAccountName: 'toolgate-tool-default', automountServiceAccountToken: false });
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod?.containers[0];
    expect(c?.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c?.resources?.limits).toEqual({ cpu: '500m', memory: '256Mi' });
    expect(c?.env?.map((e) => e.name).sort()).toEqual(['CALL_ID', 'TOOL_NAME', 'TOOL_PARAMS_FILE', 'TOOL_RESULT_TOKEN_FILE', 'TOOL_RESULT_URL', 'TRACEPARENT']);
    // The result token and the arguments are in the call's Secret (owned by the Job, immutable), not in the spec.
    const secretName = pod?.volumes?.find((v) => v.name === 'call')?.secret?.secretName;
    expect(secretName).toBe(job.metadata?.name);
    expect(c?.volumeMounts).toContainEqual({ name: 'call', mountPath: '/var/run/toolgate/call', readOnly: true });
    const secret = await core().readNamespacedSecret({ namespace: EXEC_NS, name: secretName as string });
    expect(secret.immutable).toBe(true);
    expect(secret.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', name: job.metadata?.name, uid: job.metadata?.uid })]);
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.parse(Buffer.from(secret.data?.params ?? '', 'base64').toString())).toEqual({ seconds: 1 });
    expect(JSON.stringify(job)).not.toContain(token);
    expect(job.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'toolgate-executor', 'toolgate.dev/tool': 'sleep', 'toolgate.dev/executor': INSTANCE });
    expect(job.metadata?.annotations).toMatchObject({
      'toolgate.dev/agent-id': 'ops-bot',
      'toolgate.dev/decision-id': decisionId,
      'toolgate.dev/policy-revision': 'test-rev',
      'toolgate.dev/traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(job.metadata?.annotations?.['toolgate.dev/arguments-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    // A tool that needs the API gets a short-lived projected token instead of the auto-mounted one.
    const [getJob] = (await batch().listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=k8s-get-deployment' })).items;
    const projected = getJob?.spec?.template.spec?.volumes?.find((v) => v.name === 'kube-api-access')?.projected?.sources?.find((s) => s.serviceAccountToken);
    expect(projected?.serviceAccountToken?.expirationSeconds).toBe(600);
  });

  it('answers 504 when the tool outlives its deadline, and the Job is gone', async () => {
    const res = await direct('sleep', { seconds: 30 });
    expect(res.status).toBe(504);
    const { error } = (await res.json()) as { error: { code: string; call_id: string } };
    expect(error.code).toBe('tool_timeout');
    expect(error.call_id).toMatch(/^[0-9a-f]{20}$/);
    await waitFor(async () => (await jobsFor(error.call_id)).length === 0, 15_000);
    await waitFor(async () => (await podsFor(error.call_id)).length === 0, 30_000);
    expect(await livePods('sleep')).toEqual([]);
    // The garbage collector takes the call's Secret with its Job.
    await waitFor(async () => (await secretsFor(error.call_id)) === 0, 15_000);
  });

  it('passes arguments too large for the Secret over the authenticated channel', async () => {
    const message = 'x'.repeat(40 * 1024);
    const res = await direct('echo', { message });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { call_id: string; result: { length: number } };
    expect(body.result.length).toBe(message.length);
    const [job] = await jobsFor(body.call_id);
    expect(job?.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'TOOL_PARAMS_URL')?.value).toMatch(new RegExp(`/internal/v1/calls/${body.call_id}/params$`));
    const [secret] = (await core().listNamespacedSecret({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${body.call_id}` })).items;
    expect(Object.keys(secret?.data ?? {})).toEqual(['token']);
  });

  it('cancels the call when the client disconnects: Job deleted, pod and containers gone', async () => {
    const controller = new AbortController();
    const key = `cancel-${Date.now()}`;
    const pending = direct('sleep', { seconds: 20 }, { 'idempotency-key': key }, controller.signal).catch((e: unknown) => e);
    await waitFor(async () => (await livePods('sleep')).some((p) => p.status?.phase === 'Running'), 30_000);
    const [pod] = await livePods('sleep');
    const podName = pod?.metadata?.name as string;
    expect(await containersOf(podName)).toBeGreaterThan(0);
    controller.abort();
    await pending;
    const callId = pod?.metadata?.labels?.['toolgate.dev/call-id'] as string;
    await waitFor(async () => (await jobsFor(callId)).length === 0, 10_000);
    await waitFor(async () => (await podsFor(callId)).length === 0, 30_000);
    await waitFor(async () => (await containersOf(podName)) === 0, 30_000);
  });

  it('runs an idempotent retry once (one Job, one pod) and replays its result', async () => {
    const key = `idem-${Date.now()}`;
    const [a, b] = await Promise.all([direct('echo', { message: 'once' }, { 'idempotency-key': key }), direct('echo', { message: 'once' }, { 'idempotency-key': key })]);
    const c = await direct('echo', { message: 'once' }, { 'idempotency-key': key });
    const bodies = (await Promise.all([a.json(), b.json(), c.json()])) as { call_id: string; result: unknown }[];
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(new Set(bodies.map((x) => x.call_id)).size).toBe(1);
    expect(bodies[2]?.result).toEqual({ message: 'once', length: 4 });
    expect(await jobsFor(bodies[0]?.call_id as string)).toHaveLength(1);
    expect(await podsFor(bodies[0]?.call_id as string)).toHaveLength(1);
  });

  it('answers 429 with Retry-After past the calls-in-flight limit', async () => {
    const slow = [1, 2, 3].map(() => direct('sleep', { seconds: 1.5 }));
    await waitFor(async () => (await livePods('sleep')).length >= 1, 10_000);
    const extra = await direct('echo', { message: 'one too many' });
    expect(extra.status).toBe(429);
    expect(extra.headers.get('retry-after')).toBe('1');
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200, 200]);
    // The slots are given back: the next call is admitted.
    expect((await direct('echo', { message: 'room again' })).status).toBe(200);
  });

  it('reports a crashing tool as 502 with its exit status and message', async () => {
    const res = await direct('fail', { exit_code: 3, message: 'the tool fell over' });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string; exit_code: number } };
    expect(body.error).toMatchObject({ code: 'tool_failed', exit_code: 3 });
    expect(body.error.message).toMatch(/the tool fell over/);
  });

  it('runs the tool as uid 65532, read-only root, no capabilities, RuntimeDefault seccomp: seen from inside and in the pod', async () => {
    const res = await direct('sandbox_info', {});
    expect(res.status).toBe(200);
    const body = (await res.json()) as { call_id: string; result: Record<string, unknown> };
    const zero = '0000000000000000';
    expect(body.result).toMatchObject({
      uid: 65532,
      gid: 65532,
      capabilities: { effective: zero, permitted: zero, bounding: zero, ambient: zero },
      seccomp: 2,
      no_new_privs: true,
      root_writable: false,
      call_files: ['params', 'token'],
      service_account_files: [],
    });
    const pod = await endedPod(body.call_id);
    expect(pod?.spec?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.spec?.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } });
    expect(pod?.spec?.automountServiceAccountToken).toBe(false);
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  it('reports a tool that exceeds its memory limit as OOM-killed', async () => {
    const res = await direct('allocate_memory', { mebibytes: 256, hold_seconds: 5 });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string; exit_code: number; call_id: string } };
    expect(body.error).toMatchObject({ code: 'tool_failed', exit_code: 137 });
    expect(body.error.message).toMatch(/OOM-killed.*64Mi/);
    const [pod] = await podsFor(body.error.call_id);
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('OOMKilled');
  });

  it('reports a pod that no node can take as never scheduled, at its deadline, and leaves no pod', async () => {
    const res = await direct('needs_a_huge_node', {});
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string; call_id: string } };
    expect(body.error.message).toMatch(/never scheduled.*Insufficient cpu/);
    await waitFor(async () => (await podsFor(body.error.call_id)).length === 0, 30_000);
  });

  it('fails at once, naming the image, when the runner image is missing on the node', async () => {
    await cluster.node.ctr(['images', 'remove', cluster.runner.image]);
    try {
      const t0 = Date.now();
      const res = await direct('echo', { message: 'no image' });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { message: string; call_id: string } };
      expect(body.error.message).toMatch(new RegExp(`image ${cluster.runner.image.replace(/[.:/]/g, '.')} is not available.*(ErrImagePull|ImagePullBackOff)`));
      expect(Date.now() - t0).toBeLessThan(20_000);
      await waitFor(async () => (await podsFor(body.error.call_id)).length === 0, 30_000);
    } finally {
      await cluster.node.ctr(['images', 'import', cluster.node.runnerArchive]);
    }
  });

  it('a deadline kills the pod within its short grace period', async () => {
    const t0 = Date.now();
    const res = await direct('sleep', { seconds: 60 });
    expect(res.status).toBe(504);
    const { error } = (await res.json()) as { error: { call_id: string } };
    await waitFor(async () => (await podsFor(error.call_id)).length === 0, 30_000);
    // Deadline (6 s from the Job's start) + grace (2 s) + scheduling and clean-up, never the default 30 s grace.
    expect(Date.now() - t0).toBeLessThan(25_000);
  });

  it("a call's token cannot be read by another call's pod", async () => {
    const controller = new AbortController();
    const pending = direct('sleep', { seconds: 20 }, {}, controller.signal).catch((e: unknown) => e);
    try {
      await waitFor(async () => (await livePods('sleep')).some((p) => p.status?.phase === 'Running'), 30_000);
      const [victim] = await livePods('sleep');
      const secretName = victim?.spec?.volumes?.find((v) => v.name === 'call')?.secret?.secretName as string;
      // A tool with API access (get secrets, in its target namespaces) asks for the other call's Secret: refused.
      const res = await direct('k8s_get_secret', { namespace: EXEC_NS, name: secretName });
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/forbidden/);
      // Another pod sees only its own call's files and its own processes (no /proc/<pid>/root into the other).
      const probe = (await (await direct('sandbox_info', {})).json()) as { result: { call_files: string[]; visible_pids: number[] } };
      expect(probe.result.call_files).toEqual(['params', 'token']);
      expect(probe.result.visible_pids.length).toBeLessThanOrEqual(2);
    } finally {
      controller.abort();
      await pending;
    }
  });

  it('deletes the Jobs it left running when it starts again after a crash, and only its own', async () => {
    // A call in flight on another executor replica: same labels but that replica's name, running for a while.
    const other = await batch().createNamespacedJob({ namespace: EXEC_NS, body: otherReplicasJob(cluster.runner.image) });
    const otherName = other.metadata?.name as string;
    const otherRunning = async (): Promise<boolean> =>
      (await core().listNamespacedPod({ namespace: EXEC_NS, labelSelector: `job-name=${otherName}` })).items.some((p) => p.status?.phase === 'Running');
    await waitFor(otherRunning, 30_000);
    const pending = direct('sleep', { seconds: 20 }).catch((e: unknown) => e);
    await waitFor(async () => (await livePods('sleep')).some((p) => p.status?.phase === 'Running'), 30_000);
    await stack.restartExecutor({ kill: true });
    await pending;
    const active = async (): Promise<number> =>
      (await batch().listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.filter((j) => !j.status?.conditions?.some((c) => c.status === 'True')).length;
    await waitFor(async () => (await active()) === 0, 15_000);
    await waitFor(async () => (await livePods('sleep')).length === 0, 30_000);
    // The other replica's call lives on: its Job is untouched and its process still runs.
    const after = await batch().readNamespacedJob({ namespace: EXEC_NS, name: otherName });
    expect(after.metadata?.deletionTimestamp).toBeUndefined();
    expect(after.status?.active).toBe(1);
    expect(await otherRunning()).toBe(true);
    await batch().deleteNamespacedJob({ namespace: EXEC_NS, name: otherName, propagationPolicy: 'Background', gracePeriodSeconds: 0 });
  });
});

/** A running Job as another executor replica starts them (its pod just waits), labelled with that replica's name. */
function otherReplicasJob(image: string): V1Job {
  const labels = {
    'app.kubernetes.io/managed-by': 'toolgate-executor',
    'app.kubernetes.io/component': 'tool-call',
    'toolgate.dev/call-id': 'fedcba9876543210fedc',
    'toolgate.dev/tool': 'other-replicas-call',
    'toolgate.dev/executor': 'toolgate-executor-5d8c7b9f4-other',
  };
  return {
    metadata: { name: 'tg-fedcba9876543210fedc-0000', labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 120,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: 'toolgate-tool-default',
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'tool', image, command: ['/nodejs/bin/node', '-e', 'setTimeout(() => {}, 120_000)'] }],
        },
      },
    },
  };
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
