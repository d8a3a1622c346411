import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureDebianCommand, ensureDebianFile } from './debian-package.js';
import { CACHE_DIR } from './install.js';
import { ensureKubeBinaries, ensureKubeNodeBinaries, type KubeBinaries, type KubeNodeBinaries } from './kube.js';

const run = promisify(execFile);

/**
 * Everything a real single-node Kubernetes needs on this machine (tests and bench only, never the gateway):
 * containerd, runc, the CNI plugins and iptables from Debian packages; a static busybox (the pod sandbox's
 * "pause" image, from the busybox-static package's archive, never installed); kubelet and kube-scheduler
 * built like the control plane. Idempotent; the built and downloaded parts are cached under ~/.cache/toolgate.
 */
export interface KubeNodeTools extends KubeBinaries, KubeNodeBinaries {
  containerd: string;
  ctr: string;
  runc: string;
  iptables: string;
  cniBinDir: string;
  busybox: string;
}

export async function ensureKubeNodeTools(): Promise<KubeNodeTools> {
  const containerd = await ensureDebianCommand('containerd', 'containerd');
  const ctr = await ensureDebianCommand('ctr', 'containerd');
  const runc = await ensureDebianCommand('runc', 'runc');
  const iptables = await ensureDebianCommand('iptables', 'iptables');
  const bridge = await ensureDebianFile('/usr/lib/cni/bridge', 'containernetworking-plugins');
  const busybox = await ensureStaticBusybox();
  // The node binaries share the control plane's Go build cache: build them after it.
  const control = await ensureKubeBinaries();
  const node = await ensureKubeNodeBinaries();
  return { ...control, ...node, containerd, ctr, runc, iptables, cniBinDir: join(bridge, '..'), busybox };
}

/** busybox from the busybox-static package, extracted (apt-get download + dpkg-deb -x), not installed. */
async function ensureStaticBusybox(): Promise<string> {
  const target = join(CACHE_DIR, 'bin', 'busybox-static');
  if (existsSync(target)) return target;
  process.stderr.write('[toolchain] fetching busybox-static (the pod sandbox image)\n');
  mkdirSync(join(CACHE_DIR, 'bin'), { recursive: true });
  const work = mkdtempSync(join(CACHE_DIR, 'busybox-'));
  try {
    await run('apt-get', ['download', '-qq', 'busybox-static'], { cwd: work }).catch(async () => {
      await run('apt-get', ['update', '-qq']);
      await run('apt-get', ['download', '-qq', 'busybox-static'], { cwd: work });
    });
    const { stdout } = await run('sh', ['-c', 'ls busybox-static_*.deb'], { cwd: work });
    await run('dpkg-deb', ['-x', stdout.trim(), 'x'], { cwd: work });
    renameSync(join(work, 'x', 'bin', 'busybox'), target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return target;
}
