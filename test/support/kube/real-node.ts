import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import { ensureKubeNodeTools, type KubeNodeTools } from '../../../src/toolchain/kube-node.js';
import { onInterrupt } from '../interrupt.js';
import { freePort, startProcess, type ManagedProcess } from '../managed-process.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { acquireNodeHost, addServiceDnat, recordNodeProcess, releaseNodeHost, type NodeHost } from './node-host.js';
import { buildPauseImage, buildRunnerImage, PAUSE_IMAGE, RUNNER_COMMAND, RUNNER_IMAGE } from './node-images.js';

const exec = promisify(execFile);

/**
 * A real single-node Kubernetes for tests and bench: the control plane (control-plane.ts) listening on the
 * node's bridge, containerd + runc + the CNI bridge plugin, kube-scheduler and a kubelet, with the runner
 * image built from this checkout imported into containerd. Pods are real runc containers: images, security
 * contexts, memory limits, deadlines and service-account tokens are enforced by the real components.
 * stop() stops every process by pid and undoes every host change (node-host.ts).
 */
export interface RealCluster {
  plane: ControlPlane;
  host: NodeHost;
  nodeName: string;
  /** The bridge address: where host services that pods call (result channel, OTLP) must listen. */
  hostAddress: string;
  runnerImage: string;
  runnerCommand: string[];
  /** The runner image's OCI archive (to import it again after a test removed it). */
  runnerArchive: string;
  /** `ctr` against this node's containerd (k8s.io namespace), e.g. to count containers. */
  ctr(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startRealCluster(): Promise<RealCluster> {
  const tools = await ensureKubeNodeTools();
  const workDir = await mkdtemp(join(tmpdir(), 'toolgate-node-'));
  const logDir = join(workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const host = await acquireNodeHost(workDir);
  const processes: ManagedProcess[] = [];
  let plane: ControlPlane | undefined;
  const socket = join(host.stateDir, 'containerd.sock');
  const ctr = async (args: string[]): Promise<string> => (await exec(tools.ctr, ['--address', socket, '-n', 'k8s.io', ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;

  let stopping: Promise<void> | undefined;
  // Interrupted (Ctrl-C, SIGTERM) before stop(): stop anyway, so the host is left as it was found.
  const forgetInterrupt = onInterrupt(() => stop());
  const stop = (): Promise<void> => {
    forgetInterrupt();
    return (stopping ??= stopNode());
  };
  const stopNode = async (): Promise<void> => {
    // The kubelet first (it would restart containers), then every container, then the runtime and the plane.
    for (const name of ['kubelet', 'kube-scheduler']) await processes.find((p) => p.name === name)?.stop();
    const containerd = processes.find((p) => p.name === 'containerd');
    if (containerd && !containerd.hasExited()) {
      const ids = (await ctr(['containers', 'list', '-q']).catch(() => '')).split('\n').filter(Boolean);
      for (const id of ids) await ctr(['tasks', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
      for (const id of ids) await ctr(['tasks', 'delete', '-f', id]).catch(() => undefined);
      await containerd.stop();
    }
    await plane?.stop();
    await releaseNodeHost(host);
  };

  try {
    const imagesReady = buildImages(tools, workDir);
    plane = await startControlPlane({ logDir, hostAddress: host.gatewayIp });
    for (const pid of plane.pids()) await recordNodeProcess(host, pid, plane.dir);
    await addServiceDnat(host, Number(new URL(plane.apiserverUrl).port));

    const containerdConfig = join(workDir, 'containerd.toml');
    await writeFile(containerdConfig, containerdToml(host, workDir, tools));
    await mkdir(join(workDir, 'cni'), { recursive: true });
    await writeFile(join(workDir, 'cni', '10-toolgate.conflist'), JSON.stringify(cniConfig(host)));
    const containerd = startProcess({ name: 'containerd', command: tools.containerd, args: ['--config', containerdConfig], logDir });
    processes.push(containerd);
    await recordNodeProcess(host, containerd.pid);
    await waitUntil(() => ctr(['version']).then(() => true, () => false), 30_000, 'containerd', containerd);
    const images = await imagesReady;
    for (const archive of images) await ctr(['images', 'import', archive]);

    const admin = plane.adminKubeconfigPath;
    const scheduler = startProcess({
      name: 'kube-scheduler',
      command: tools.kubeScheduler,
      args: [`--kubeconfig=${admin}`, `--authentication-kubeconfig=${admin}`, `--authorization-kubeconfig=${admin}`, '--leader-elect=false', '--bind-address=127.0.0.1', '--secure-port=0', '--v=0'],
      logDir,
    });
    processes.push(scheduler);
    await recordNodeProcess(host, scheduler.pid, plane.dir);

    const nodeKubeconfig = await plane.kubeconfigForCertificate('node', `/O=system:nodes/CN=system:node:${host.name}`);
    const kubeletConfig = join(workDir, 'kubelet.yaml');
    await writeFile(kubeletConfig, toYaml(kubeletConfiguration(host, workDir, socket, await freePort(), plane.caCertPath)));
    const kubelet = startProcess({
      name: 'kubelet',
      command: tools.kubelet,
      args: [`--config=${kubeletConfig}`, `--kubeconfig=${nodeKubeconfig}`, `--root-dir=${join(workDir, 'kubelet')}`, `--cert-dir=${join(workDir, 'kubelet-pki')}`, `--hostname-override=${host.name}`, `--node-ip=${host.gatewayIp}`, '--v=1'],
      logDir,
    });
    processes.push(kubelet);
    await recordNodeProcess(host, kubelet.pid);
    const core = plane.admin().makeApiClient(CoreV1Api);
    await waitUntil(
      async () => {
        const node = await core.readNode({ name: host.name }).catch(() => undefined);
        return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      },
      90_000,
      'node Ready',
      kubelet,
    );
    const p = plane;
    return { plane: p, host, nodeName: host.name, hostAddress: host.gatewayIp, runnerImage: RUNNER_IMAGE, runnerCommand: RUNNER_COMMAND, runnerArchive: images[1] as string, ctr, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function buildImages(tools: KubeNodeTools, workDir: string): Promise<string[]> {
  const pause = join(workDir, 'pause.oci.tar');
  const runner = join(workDir, 'runner.oci.tar');
  await buildPauseImage(tools.busybox, pause);
  await buildRunnerImage(runner);
  return [pause, runner];
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string, proc: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.hasExited()) throw new Error(`${proc.name} exited while waiting for ${what}:\n${proc.logTail()}`);
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms:\n${proc.logTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * containerd for one node: its own root, state and socket; cgroupfs; the locally built pause image; and
 * oom_score_adj clamped (root here lacks CAP_SYS_RESOURCE, so runc could not lower it: every sandbox failed).
 */
function containerdToml(host: NodeHost, workDir: string, tools: KubeNodeTools): string {
  return `version = 2
root = "${join(workDir, 'containerd')}"
state = "${join(host.stateDir, 'containerd')}"
[grpc]
  address = "${join(host.stateDir, 'containerd.sock')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${tools.cniBinDir}"
    conf_dir = "${join(workDir, 'cni')}"
`;
}

/** The bridge, never masquerading (pods' traffic stays on this machine; see node-host.ts). */
function cniConfig(host: NodeHost): unknown {
  return {
    cniVersion: '0.4.0',
    name: host.name,
    plugins: [
      {
        type: 'bridge',
        bridge: host.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: host.subnet, gateway: host.gatewayIp }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(host.stateDir, 'ipam') },
      },
      { type: 'loopback' },
    ],
  };
}

/** cgroup v1 + cgroupfs, no swap check, its own cgroup root and port (no healthz, no read-only port), nothing reserved or evicted. */
function kubeletConfiguration(host: NodeHost, workDir: string, socket: string, port: number, clientCaFile: string): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: host.cgroupRoot,
    failSwapOn: false,
    failCgroupV1: false,
    containerRuntimeEndpoint: `unix://${socket}`,
    podLogsDir: join(workDir, 'pod-logs'),
    syncFrequency: '5s',
    address: host.gatewayIp,
    port,
    readOnlyPort: 0,
    healthzPort: 0,
    // Pods can reach the bridge address: the kubelet's API (exec, logs) answers only the apiserver's client certificate and token-holders the apiserver authorizes.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: clientCaFile } },
    authorization: { mode: 'Webhook' },
    enforceNodeAllocatable: [],
    localStorageCapacityIsolation: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: {},
    resolvConf: '',
    serializeImagePulls: false,
    registerNode: true,
  };
}
