import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const exec = promisify(execFile);

/**
 * The host side of a real node (test support): a slot, so that test runs sharing this machine each get their
 * own bridge, pod subnet, cgroup root and CNI network name; the bridge; the two iptables rules; and the
 * clean-up of everything a node leaves on the host (mounts, network namespaces, the CNI cache, cgroups, the
 * rules, the kubelet's own iptables chains, the bridge, ip_forward, directories that did not exist before). Clean-up is idempotent and also runs
 * for a slot whose owner died, before the slot is reused.
 *
 * Network containment: the bridge never masquerades, a FORWARD DROP rule keeps every packet from the pod
 * subnet to anything outside it on this machine (the bridge plugin turns ip_forward on), and the only
 * redirect is the `kubernetes` Service IP to the apiserver's port on the bridge address.
 */
const SLOTS_DIR = '/run/toolgate-node';
const MAX_SLOTS = 8;
/** Pod subnets 10.244.(200+slot).0/24: clear of this machine's routes (checked at acquire) and of the Service range 10.0.0.0/24. */
const SUBNET_BASE = 200;
export const SERVICE_IP = '10.0.0.1';
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'systemd'];
/** Host directories a kubelet or CNI may create outside the node's own directories: removed if we made them. */
const HOST_DIRS = ['/var/lib/cni', '/run/netns', '/var/log/containers', '/var/log/pods', '/var/lib/kubelet'];

export interface NodeHost {
  slot: number;
  /** Node name, CNI network name and cgroup root name. */
  name: string;
  bridge: string;
  gatewayIp: string;
  subnet: string;
  /** Per-slot runtime state: containerd socket and state, CNI IPAM. */
  stateDir: string;
  /** The node's files on disk (containerd root, kubelet root, pod logs). */
  workDir: string;
  /** Absolute cgroup path the kubelet puts kubepods under. */
  cgroupRoot: string;
  /** The slot's reaper (see startReaper), stopped when the slot is released. */
  reaperPid?: number;
}

interface SlotRecord {
  pid: number;
  workDir: string;
  apiserverPort?: number;
  /**
   * The node's processes (containerd, kubelet, scheduler, the control plane): stopped by pid if their owner
   * died, each only while its command line still names `mark` (a directory of this node: pids get reused).
   */
  processes?: (number | { pid: number; mark: string })[];
}

interface HostRecord {
  ipForward: string;
  existed: string[];
  /** The kubelet's iptables chains that were already there (`<binary> <table> <chain>`): left as they were. */
  chainsBefore?: string[];
}

/**
 * iptables chains a kubelet makes on the host whatever its configuration (its canaries, the iptables-mode hint,
 * and KUBE-FIREWALL with its jumps from INPUT and OUTPUT, which drops non-loopback packets to 127.0.0.0/8).
 * Removed when the last node stops, unless they were there before.
 */
const KUBELET_CHAINS: readonly { table: string; chain: string; jumpsFrom: readonly string[] }[] = [
  { table: 'filter', chain: 'KUBE-FIREWALL', jumpsFrom: ['INPUT', 'OUTPUT'] },
  { table: 'filter', chain: 'KUBE-KUBELET-CANARY', jumpsFrom: [] },
  { table: 'nat', chain: 'KUBE-KUBELET-CANARY', jumpsFrom: [] },
  { table: 'mangle', chain: 'KUBE-KUBELET-CANARY', jumpsFrom: [] },
  { table: 'mangle', chain: 'KUBE-IPTABLES-HINT', jumpsFrom: [] },
];
const IPTABLES_BINARIES = ['iptables', 'ip6tables'] as const;

async function presentKubeletChains(): Promise<string[]> {
  const present: string[] = [];
  for (const bin of IPTABLES_BINARIES) {
    for (const { table, chain } of KUBELET_CHAINS) {
      if (await exec(bin, ['-w', '-t', table, '-S', chain]).then(() => true, () => false)) present.push(`${bin} ${table} ${chain}`);
    }
  }
  return present;
}

async function removeKubeletChains(keep: readonly string[]): Promise<void> {
  for (const bin of IPTABLES_BINARIES) {
    for (const { table, chain, jumpsFrom } of KUBELET_CHAINS) {
      if (keep.includes(`${bin} ${table} ${chain}`)) continue;
      // Every jump to the chain (a kubelet restarted may have added one each time); -D fails once none is left.
      for (const from of jumpsFrom) {
        while (await exec(bin, ['-w', '-t', table, '-D', from, '-j', chain]).then(() => true, () => false));
      }
      await exec(bin, ['-w', '-t', table, '-F', chain]).catch(() => undefined);
      await exec(bin, ['-w', '-t', table, '-X', chain]).catch(() => undefined);
    }
  }
}

function hostFor(slot: number, workDir: string): NodeHost {
  const octet = SUBNET_BASE + slot;
  const name = `toolgate-node-${slot}`;
  return { slot, name, bridge: `tgnode${slot}`, gatewayIp: `10.244.${octet}.1`, subnet: `10.244.${octet}.0/24`, stateDir: join(SLOTS_DIR, `slot-${slot}`), workDir, cgroupRoot: `/${name}` };
}

const sh = async (cmd: string, args: string[]): Promise<string> => (await exec(cmd, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
const quiet = (cmd: string, args: string[]): Promise<string> => sh(cmd, args).catch(() => '');
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Serialises slot bookkeeping between processes (mkdir is atomic); a lock older than 60 s is stale. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(SLOTS_DIR, 'lock');
  await mkdir(SLOTS_DIR, { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      const since = await stat(lock).then((s) => s.mtimeMs, () => Date.now());
      if (Date.now() - since > 60_000) await rmdir(lock).catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`${lock} held for 2 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(lock).catch(() => undefined);
    await rmdir(SLOTS_DIR).catch(() => undefined); // only when no slot is recorded
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function heldSlots(): Promise<number[]> {
  const held: number[] = [];
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const rec = await readJson<SlotRecord>(join(SLOTS_DIR, `slot-${slot}.json`));
    if (rec && alive(rec.pid)) held.push(slot);
  }
  return held;
}

/** Takes a free slot (cleaning up after a dead owner first), records the host's state, makes the bridge and the FORWARD DROP rule. */
export async function acquireNodeHost(workDir: string): Promise<NodeHost> {
  const host = await withLock(async () => {
    for (let slot = 0; slot < MAX_SLOTS; slot++) {
      const recPath = join(SLOTS_DIR, `slot-${slot}.json`);
      const rec = await readJson<SlotRecord>(recPath);
      if (rec && alive(rec.pid)) continue;
      if (rec) await cleanSlot(hostFor(slot, rec.workDir), rec);
      const h = hostFor(slot, workDir);
      const routes = await sh('ip', ['-4', 'route', 'show']);
      if (routes.includes(h.subnet.replace('.0/24', '.'))) continue; // something else routes there
      if ((await heldSlots()).length === 0) {
        const existed = HOST_DIRS.filter((d) => existsSync(d));
        const record: HostRecord = { ipForward: (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), existed, chainsBefore: await presentKubeletChains() };
        await writeFile(join(SLOTS_DIR, 'host.json'), JSON.stringify(record));
      }
      await writeFile(recPath, JSON.stringify({ pid: process.pid, workDir } satisfies SlotRecord));
      h.reaperPid = startReaper(slot);
      return h;
    }
    throw new Error(`all ${MAX_SLOTS} real-node slots on this machine are in use`);
  });
  try {
    await mkdir(host.stateDir, { recursive: true });
    await sh('ip', ['link', 'add', host.bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'add', `${host.gatewayIp}/24`, 'dev', host.bridge]);
    await sh('ip', ['link', 'set', host.bridge, 'up']);
    await sh('iptables', ['-w', '-I', 'FORWARD', ...forwardDrop(host)]);
    for (const c of V1_CONTROLLERS) {
      const base = join('/sys/fs/cgroup', c);
      if (!existsSync(base)) continue;
      await mkdir(join(base, host.name), { recursive: true });
      if (c === 'cpuset') {
        // A new cpuset cgroup starts empty: give it its parent's CPUs and memory nodes, or nothing can run in it.
        for (const f of ['cpuset.cpus', 'cpuset.mems']) await writeFile(join(base, host.name, f), await readFile(join(base, f), 'utf8'));
      }
    }
  } catch (err) {
    await releaseNodeHost(host);
    throw err;
  }
  return host;
}

const forwardDrop = (h: NodeHost): string[] => ['-s', h.subnet, '!', '-d', h.subnet, '-j', 'DROP'];
const serviceDnat = (h: NodeHost, port: number): string[] => ['-s', h.subnet, '-d', `${SERVICE_IP}/32`, '-p', 'tcp', '--dport', '443', '-j', 'DNAT', '--to-destination', `${h.gatewayIp}:${port}`];

/**
 * Records a process of the node, so that a slot whose owner died can still stop it by pid; `mark` is a path
 * its command line contains (default: the node's work directory).
 */
export async function recordNodeProcess(host: NodeHost, pid: number, mark: string = host.workDir): Promise<void> {
  const recPath = join(SLOTS_DIR, `slot-${host.slot}.json`);
  const rec = (await readJson<SlotRecord>(recPath)) ?? { pid: process.pid, workDir: host.workDir };
  await writeFile(recPath, JSON.stringify({ ...rec, processes: [...(rec.processes ?? []), { pid, mark }] }));
}

/** In-cluster clients dial the `kubernetes` Service: with no kube-proxy, one DNAT rule to the apiserver does it. */
export async function addServiceDnat(host: NodeHost, apiserverPort: number): Promise<void> {
  const recPath = join(SLOTS_DIR, `slot-${host.slot}.json`);
  const rec = await readJson<SlotRecord>(recPath);
  await writeFile(recPath, JSON.stringify({ ...(rec ?? { pid: process.pid, workDir: host.workDir }), apiserverPort }));
  await sh('iptables', ['-w', '-t', 'nat', '-I', 'PREROUTING', ...serviceDnat(host, apiserverPort)]);
}

/** Undoes everything for this slot (the node's processes must be stopped first), then frees it. */
export async function releaseNodeHost(host: NodeHost): Promise<void> {
  await withLock(async () => {
    const recPath = join(SLOTS_DIR, `slot-${host.slot}.json`);
    const rec = (await readJson<SlotRecord>(recPath)) ?? { pid: process.pid, workDir: host.workDir };
    await cleanSlot(host, rec);
  });
  if (host.reaperPid !== undefined && alive(host.reaperPid)) process.kill(host.reaperPid, 'SIGTERM');
}

/**
 * A slot's reaper: a detached process (its own session: a Ctrl-C does not reach it) that waits for the
 * slot's owner to die and then cleans the slot as releaseNodeHost would. It covers an owner that cannot clean
 * up itself: killed (SIGKILL; vitest gives its workers 500 ms after SIGTERM), crashed, or interrupted during
 * its start. It exits as soon as the slot is released or taken over. Needs the compiled reaper (npm run
 * build); without it, the next acquireNodeHost cleans the dead owner's slot, as before.
 */
function startReaper(slot: number): number | undefined {
  const script = join(REPO_ROOT, 'dist', 'test', 'support', 'kube', 'node-reaper.js');
  if (!existsSync(script)) return undefined;
  const child = spawn(process.execPath, [script, String(slot), String(process.pid)], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid;
}

/** The reaper's work: returns once the slot is released or taken over, cleaning it first if its owner died holding it. */
export async function reapSlotWhenOwnerDies(slot: number, owner: number, pollMs = 500): Promise<'released' | 'cleaned'> {
  const recPath = join(SLOTS_DIR, `slot-${slot}.json`);
  for (;;) {
    const rec = await readJson<SlotRecord>(recPath);
    if (!rec || rec.pid !== owner) return 'released';
    if (!alive(owner)) {
      const cleaned = await withLock(async () => {
        const now = await readJson<SlotRecord>(recPath);
        if (!now || now.pid !== owner || alive(owner)) return false;
        await cleanSlot(hostFor(slot, now.workDir), now);
        return true;
      });
      return cleaned ? 'cleaned' : 'released';
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Pids in the slot's cgroup tree (containers) and containerd shims serving the slot's socket. */
async function slotPids(host: NodeHost): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string): Promise<void> => {
    for (const p of (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n')) if (p.trim()) pids.add(Number(p));
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  await walk(join('/sys/fs/cgroup/pids', host.name));
  const socket = join(host.stateDir, 'containerd.sock');
  for (const p of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(join('/proc', p, 'cmdline'), 'utf8').catch(() => '');
    if (cmd.includes('containerd-shim') && cmd.split('\0').includes(socket)) pids.add(Number(p));
  }
  pids.delete(process.pid);
  return [...pids];
}

async function cleanSlot(host: NodeHost, rec: SlotRecord): Promise<void> {
  // The node's own processes first (a dead owner's), checked by command line against pid reuse.
  for (const p of rec.processes ?? []) {
    const { pid, mark } = typeof p === 'number' ? { pid: p, mark: rec.workDir } : p;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (pid !== process.pid && cmd.includes(mark)) process.kill(pid, 'SIGKILL');
  }
  for (const pid of await slotPids(host)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // Mounts under the node's directories (overlay rootfs, secrets, emptyDirs, shm), deepest first.
  const mounts = (await readFile('/proc/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${rec.workDir}/`) || m.startsWith(`${host.stateDir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await sh('umount', [m]).catch(() => quiet('umount', ['-l', m]));
  // Network namespaces the runtime made for this slot's pods: the ones holding an address in its subnet.
  const prefix = host.subnet.replace('.0/24', '.');
  for (const ns of await readdir('/run/netns').catch(() => [] as string[])) {
    if (!ns.startsWith('cni-')) continue;
    const addrs = await quiet('ip', ['-n', ns, '-4', '-o', 'addr', 'show']);
    if (addrs.includes(` ${prefix}`)) {
      await quiet('umount', [join('/run/netns', ns)]);
      await rm(join('/run/netns', ns), { force: true });
    }
  }
  await quiet('ip', ['link', 'del', host.bridge]);
  // The CNI cache: this network's results (and the runtime's loopback results of the same sandboxes) name each
  // pod's network namespace; both go, with namespaces whose veth died with the bridge.
  const results = '/var/lib/cni/results';
  const ours = (await readdir(results).catch(() => [] as string[])).filter((f) => f.startsWith(`${host.name}-`));
  const sandboxes = new Set<string>();
  for (const f of ours) {
    const cached = await readJson<{ containerId?: string; result?: { interfaces?: { sandbox?: string }[] } }>(join(results, f));
    if (cached?.containerId) sandboxes.add(cached.containerId);
    for (const i of cached?.result?.interfaces ?? []) {
      if (i.sandbox && /^\/(var\/)?run\/netns\/cni-[-0-9a-f]+$/.test(i.sandbox)) {
        await quiet('umount', [i.sandbox]);
        await rm(i.sandbox, { force: true });
      }
    }
    await rm(join(results, f), { force: true });
  }
  for (const id of sandboxes) await rm(join(results, `cni-loopback-${id}-lo`), { force: true });
  await deleteRule(['FORWARD', ...forwardDrop(host)]);
  if (rec.apiserverPort !== undefined) await deleteRule(['-t', 'nat', 'PREROUTING', ...serviceDnat(host, rec.apiserverPort)]);
  for (const c of V1_CONTROLLERS) await removeCgroupTree(join('/sys/fs/cgroup', c, host.name));
  // Container log links the kubelet made that point into this node's directories.
  for (const l of await readdir('/var/log/containers').catch(() => [] as string[])) {
    const target = await readlink(join('/var/log/containers', l)).catch(() => '');
    if (target.startsWith(`${rec.workDir}/`)) await rm(join('/var/log/containers', l), { force: true });
  }
  await rm(host.stateDir, { recursive: true, force: true });
  await rm(rec.workDir, { recursive: true, force: true });
  await rm(join(SLOTS_DIR, `slot-${host.slot}.json`), { force: true });
  if ((await heldSlots()).length === 0) await restoreHost();
}

/** Deletes every copy of a rule (`[-t table] CHAIN spec...`). */
async function deleteRule(rule: string[]): Promise<void> {
  const [table, chainAndSpec] = rule[0] === '-t' ? [rule.slice(0, 2), rule.slice(2)] : [[], rule];
  const present = (): Promise<boolean> => exec('iptables', ['-w', ...table, '-C', ...chainAndSpec]).then(() => true, () => false);
  while (await present()) await sh('iptables', ['-w', ...table, '-D', ...chainAndSpec]);
}

async function removeCgroupTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/** The last slot released: ip_forward as it was, the kubelet's iptables chains and the host directories nobody had before. */
async function restoreHost(): Promise<void> {
  const path = join(SLOTS_DIR, 'host.json');
  const rec = await readJson<HostRecord>(path);
  if (!rec) return;
  await writeFile('/proc/sys/net/ipv4/ip_forward', `${rec.ipForward}\n`);
  // A record from before chains were recorded: nothing known of them, so none is touched.
  if (rec.chainsBefore) await removeKubeletChains(rec.chainsBefore);
  for (const d of HOST_DIRS) {
    if (rec.existed.includes(d)) continue;
    if (d === '/run/netns') await quiet('umount', [d]);
    // The kubelet's device-plugin socket is always under /var/lib/kubelet, whatever its --root-dir.
    if (d === '/var/lib/kubelet') await rm(join(d, 'device-plugins', 'kubelet.sock'), { force: true });
    await removeEmptyTree(d);
  }
  await rm(path, { force: true });
}

/** Removes a directory tree that holds no files (only empty directories). */
async function removeEmptyTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await removeEmptyTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}
