import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import type { ControlPlane } from './control-plane.js';

/**
 * TEST DOUBLE for the only parts of Kubernetes that cannot run here: the scheduler's binding, the kubelet and
 * the container runtime. It registers a Ready node, binds pending pods of the watched namespaces to it, runs
 * each pod's container command as a local process with the container's literal env (a projected
 * service-account token is emulated by a kubeconfig holding a token for the pod's service account; a secret
 * volume is written to a local directory, and env values naming a path under its mount path are rewritten to
 * point there, in place of a bind mount; like a kubelet, it waits until the Secret exists), and
 * writes pod status back, so that the real Job controller completes, fails, times out and garbage-collects
 * Jobs exactly as in a cluster. It does not pull images, enforce security contexts or resource limits.
 */
export interface NodeStandIn {
  nodeName: string;
  /** Every pod it ran, in order: the count of real executions. */
  started(): { namespace: string; pod: string; pid: number }[];
  running(): number;
  stop(): Promise<void>;
}

const PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export async function startNodeStandIn(opts: { controlPlane: ControlPlane; namespaces: string[]; nodeName?: string }): Promise<NodeStandIn> {
  const nodeName = opts.nodeName ?? 'toolgate-standin';
  const core = opts.controlPlane.admin().makeApiClient(CoreV1Api);
  const workDir = await mkdtemp(join(opts.controlPlane.dir, 'node-'));
  const procs = new Map<string, ChildProcess>();
  const started: { namespace: string; pod: string; pid: number }[] = [];
  let stopped = false;

  const readyNode = async (): Promise<void> => {
    const now = new Date();
    await core.patchNodeStatus(
      { name: nodeName, body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'StandInReady', message: 'test node stand-in', lastHeartbeatTime: now, lastTransitionTime: now }] } } },
      PATCH,
    );
  };
  await core.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } }, spec: {} } }).catch(() => undefined);
  await readyNode();

  const patchStatus = (pod: V1Pod, status: Record<string, unknown>): Promise<unknown> =>
    core.patchNamespacedPodStatus({ name: pod.metadata?.name as string, namespace: pod.metadata?.namespace as string, body: { status } }, PATCH).catch(() => undefined);

  const kubeconfigFor = async (pod: V1Pod): Promise<string | undefined> => {
    const projected = pod.spec?.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken));
    if (!projected || !pod.spec?.serviceAccountName) return undefined;
    const ns = pod.metadata?.namespace as string;
    const tr = await core.createNamespacedServiceAccountToken({ namespace: ns, name: pod.spec.serviceAccountName, body: { spec: { audiences: [], expirationSeconds: 600 } } });
    const path = join(workDir, `${pod.metadata?.name}.kubeconfig`);
    await writeFile(
      path,
      toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: opts.controlPlane.apiserverUrl, 'certificate-authority': opts.controlPlane.caCertPath } }],
        users: [{ name: 'u', user: { token: tr.status?.token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u', namespace: ns } }],
        'current-context': 'c',
      }),
    );
    return path;
  };

  /** Secret volumes as local directories, keyed by the container's mount path; undefined while a Secret is missing. */
  const secretMounts = async (pod: V1Pod): Promise<Map<string, string> | undefined> => {
    const mounts = new Map<string, string>();
    const ns = pod.metadata?.namespace as string;
    for (const v of pod.spec?.volumes ?? []) {
      if (!v.secret?.secretName) continue;
      const mountPath = pod.spec?.containers[0]?.volumeMounts?.find((m) => m.name === v.name)?.mountPath;
      if (!mountPath) continue;
      const secret = await core.readNamespacedSecret({ namespace: ns, name: v.secret.secretName }).catch(() => undefined);
      if (!secret) return undefined;
      const dir = join(workDir, `${pod.metadata?.name}-${v.name}`);
      await mkdir(dir, { recursive: true });
      for (const [k, b64] of Object.entries(secret.data ?? {})) await writeFile(join(dir, k), Buffer.from(b64, 'base64'), { mode: v.secret.defaultMode ?? 0o644 });
      mounts.set(mountPath, dir);
    }
    return mounts;
  };

  const runPod = async (pod: V1Pod): Promise<void> => {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const c = pod.spec?.containers[0];
    if (!c?.command?.length) {
      await patchStatus(pod, { phase: 'Failed', reason: 'NoCommand', message: 'the node stand-in runs only pods whose container has a command' });
      return;
    }
    const mounts = await secretMounts(pod);
    if (!mounts) return; // a Secret it needs does not exist yet: stay Pending, try again on the next tick
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = inMounts(e.value, mounts);
    const kubeconfig = await kubeconfigFor(pod).catch(() => undefined);
    if (kubeconfig) env.KUBECONFIG = kubeconfig;
    const [cmd, ...args] = [...c.command, ...(c.args ?? [])] as [string, ...string[]];
    const child = spawn(cmd, args, { env, cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.set(key, child);
    started.push({ namespace: pod.metadata?.namespace as string, pod: pod.metadata?.name as string, pid: child.pid ?? -1 });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4096)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4096)));
    const startedAt = new Date();
    await patchStatus(pod, {
      phase: 'Running',
      startTime: startedAt,
      hostIP: '127.0.0.1',
      podIP: '127.0.0.1',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: startedAt }],
      containerStatuses: [{ name: c.name, image: c.image, imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt } } }],
    });
    child.on('exit', (code, signal) => {
      procs.delete(key);
      const exitCode = code ?? (signal ? 137 : 1);
      const finishedAt = new Date();
      void patchStatus(pod, {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: finishedAt }],
        containerStatuses: [
          {
            name: c.name,
            image: c.image,
            imageID: '',
            ready: false,
            started: false,
            restartCount: 0,
            state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt, ...(exitCode !== 0 ? { message: out } : {}) } },
          },
        ],
      });
    });
  };

  const tick = async (): Promise<void> => {
    const seen = new Set<string>();
    for (const namespace of opts.namespaces) {
      const pods = await core.listNamespacedPod({ namespace }).catch(() => undefined);
      for (const pod of pods?.items ?? []) {
        const name = pod.metadata?.name as string;
        const key = `${namespace}/${name}`;
        seen.add(key);
        if (pod.metadata?.deletionTimestamp) {
          // What a kubelet does when a pod is deleted: stop its containers, then confirm the deletion.
          procs.get(key)?.kill('SIGKILL');
          await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
          continue;
        }
        if (!pod.spec?.nodeName) {
          await core
            .createNamespacedPodBinding({ name, namespace, body: { apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } } })
            .catch(() => undefined);
          continue;
        }
        if (pod.spec.nodeName === nodeName && pod.status?.phase === 'Pending' && !procs.has(key) && !started.some((s) => `${s.namespace}/${s.pod}` === key)) {
          await runPod(pod);
        }
      }
    }
    for (const [key, child] of procs) if (!seen.has(key)) child.kill('SIGKILL');
  };

  const inMounts = (value: string, mounts: Map<string, string>): string => {
    for (const [mountPath, dir] of mounts) if (value === mountPath || value.startsWith(`${mountPath}/`)) return dir + value.slice(mountPath.length);
    return value;
  };

  let heartbeat = Date.now();
  const loop = (async () => {
    while (!stopped) {
      await tick().catch(() => undefined);
      if (Date.now() - heartbeat > 15_000) {
        heartbeat = Date.now();
        await readyNode().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  return {
    nodeName,
    started: () => [...started],
    running: () => procs.size,
    stop: async () => {
      stopped = true;
      await loop;
      for (const child of procs.values()) child.kill('SIGKILL');
    },
  };
}
