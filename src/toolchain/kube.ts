import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './install.js';
import { VERSIONS } from './versions.js';

/**
 * kube-apiserver, kube-controller-manager and etcd built from the Go module proxy (no release downloads are
 * reachable here). k8s.io/kubernetes cannot be `go install`ed: its go.mod points the staging modules at
 * ./staging, so a small tools module requires it and replaces every staging module with its published
 * v0.x twin. The binaries are cached under ~/.cache/toolgate/bin keyed by version; Go's own build and module
 * caches make a rebuild after a version bump cheap.
 */
const STAGING_MODULES = [
  'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider',
  'cluster-bootstrap', 'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api',
  'cri-client', 'csi-translation-lib', 'dynamic-resource-allocation', 'endpointslice', 'externaljwt', 'kms',
  'kube-aggregator', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubectl', 'kubelet', 'metrics',
  'mount-utils', 'pod-security-admission', 'sample-apiserver', 'sample-cli-plugin', 'sample-controller',
];

export interface KubeBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

function toolsModule(dir: string, goMod: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'go.mod'), goMod);
}

async function buildInto(target: string, moduleDir: string, pkg: string, ldflags: string): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await run('go', ['build', '-mod=mod', '-trimpath', '-ldflags', ldflags, '-o', tmp, pkg], moduleDir, { CGO_ENABLED: '0', GOFLAGS: '-mod=mod' });
  renameSync(tmp, target);
}

/** The tools module every Kubernetes binary is built from (one module, so one Go build cache serves all). */
function kubeToolsModule(): { dir: string; ldflags: string } {
  const k8s = VERSIONS.kubernetes;
  const staging = `v0.${k8s.slice(3)}`;
  const dir = join(CACHE_DIR, `kube-tools-${k8s}`);
  const [major, minor] = k8s.slice(1).split('.');
  toolsModule(
    dir,
    [
      'module toolgate.local/kube-tools',
      '',
      'go 1.24',
      '',
      `require k8s.io/kubernetes ${k8s}`,
      '',
      ...STAGING_MODULES.map((m) => `replace k8s.io/${m} => k8s.io/${m} ${staging}`),
      '',
    ].join('\n'),
  );
  const ldflags = [`-X k8s.io/component-base/version.gitVersion=${k8s}`, `-X k8s.io/component-base/version.gitMajor=${major}`, `-X k8s.io/component-base/version.gitMinor=${minor}`, '-s -w'].join(' ');
  return { dir, ldflags };
}

export interface KubeNodeBinaries {
  kubelet: string;
  kubeScheduler: string;
}

/**
 * kubelet and kube-scheduler for a real node (tests and bench), built like the apiserver from the same tools
 * module: with the Go build cache warm from the apiserver build this takes ~25 s on 2 cores.
 */
export async function ensureKubeNodeBinaries(): Promise<KubeNodeBinaries> {
  const k8s = VERSIONS.kubernetes;
  const binDir = join(CACHE_DIR, 'bin');
  mkdirSync(binDir, { recursive: true });
  const out: KubeNodeBinaries = { kubelet: join(binDir, `kubelet-${k8s}`), kubeScheduler: join(binDir, `kube-scheduler-${k8s}`) };
  if (!existsSync(out.kubelet) || !existsSync(out.kubeScheduler)) {
    process.stderr.write(`[toolchain] building kubelet and kube-scheduler ${k8s} (first time only)\n`);
    const tools = kubeToolsModule();
    if (!existsSync(out.kubelet)) await buildInto(out.kubelet, tools.dir, 'k8s.io/kubernetes/cmd/kubelet', tools.ldflags);
    if (!existsSync(out.kubeScheduler)) await buildInto(out.kubeScheduler, tools.dir, 'k8s.io/kubernetes/cmd/kube-scheduler', tools.ldflags);
  }
  return out;
}

export async function ensureKubeBinaries(): Promise<KubeBinaries> {
  const k8s = VERSIONS.kubernetes;
  const binDir = join(CACHE_DIR, 'bin');
  mkdirSync(binDir, { recursive: true });
  const out: KubeBinaries = {
    kubeApiserver: join(binDir, `kube-apiserver-${k8s}`),
    kubeControllerManager: join(binDir, `kube-controller-manager-${k8s}`),
    etcd: join(binDir, `etcd-${VERSIONS.etcd}`),
  };

  if (!existsSync(out.kubeApiserver) || !existsSync(out.kubeControllerManager)) {
    process.stderr.write(`[toolchain] building kube-apiserver and kube-controller-manager ${k8s} (first time only; long on 2 cores)\n`);
    const tools = kubeToolsModule();
    if (!existsSync(out.kubeApiserver)) await buildInto(out.kubeApiserver, tools.dir, 'k8s.io/kubernetes/cmd/kube-apiserver', tools.ldflags);
    if (!existsSync(out.kubeControllerManager)) await buildInto(out.kubeControllerManager, tools.dir, 'k8s.io/kubernetes/cmd/kube-controller-manager', tools.ldflags);
  }

  if (!existsSync(out.etcd)) {
    process.stderr.write(`[toolchain] building etcd ${VERSIONS.etcd}\n`);
    const dir = join(CACHE_DIR, `etcd-tools-${VERSIONS.etcd}`);
    rmSync(dir, { recursive: true, force: true });
    toolsModule(dir, ['module toolgate.local/etcd-tools', '', 'go 1.24', '', `require go.etcd.io/etcd/server/v3 ${VERSIONS.etcd}`, ''].join('\n'));
    await buildInto(out.etcd, dir, 'go.etcd.io/etcd/server/v3', '-s -w');
  }
  return out;
}
