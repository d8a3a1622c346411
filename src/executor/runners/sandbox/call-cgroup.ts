import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A cgroup per call, so one tool cannot take the machine's memory, CPU or process table. cgroup v2 when the
 * unified hierarchy has the controllers, else the v1 memory/cpu/pids hierarchies; when neither is writable
 * (not root), `available()` is false and the sandbox runs with rlimits only.
 */
export interface CallLimits {
  memoryBytes: number;
  cpuMillis: number;
  pids: number;
}

export interface CallCgroup {
  /** cgroup.procs files the sandboxed process must join before it execs. */
  procsFiles: string[];
  memoryLimitHit(): Promise<boolean>;
  /** SIGKILL to every process in the cgroup (the sandbox's own session included). */
  killAll(): Promise<void>;
  remove(): Promise<void>;
}

const ROOT = '/sys/fs/cgroup';
const GROUP = 'toolgate';
const CPU_PERIOD_US = 100_000;

type Flavour = 'v2' | 'v1' | 'none';
let flavour: Flavour | undefined;

async function detect(): Promise<Flavour> {
  if (flavour) return flavour;
  flavour = 'none';
  try {
    const controllers = existsSync(join(ROOT, 'cgroup.controllers')) ? await readFile(join(ROOT, 'cgroup.controllers'), 'utf8') : '';
    if (/\bmemory\b/.test(controllers) && /\bpids\b/.test(controllers)) {
      await mkdir(join(ROOT, GROUP), { recursive: true });
      await writeFile(join(ROOT, 'cgroup.subtree_control'), '+memory +cpu +pids').catch(() => undefined);
      await writeFile(join(ROOT, GROUP, 'cgroup.subtree_control'), '+memory +cpu +pids');
      flavour = 'v2';
    } else if (existsSync(join(ROOT, 'memory', 'memory.limit_in_bytes')) || existsSync(join(ROOT, 'memory'))) {
      for (const c of ['memory', 'cpu', 'pids']) await mkdir(join(ROOT, c, GROUP), { recursive: true });
      flavour = 'v1';
    }
  } catch {
    flavour = 'none';
  }
  return flavour;
}

export async function cgroupsAvailable(): Promise<boolean> {
  return (await detect()) !== 'none';
}

export async function createCallCgroup(callName: string, limits: CallLimits): Promise<CallCgroup | undefined> {
  const f = await detect();
  if (f === 'none') return undefined;
  if (f === 'v2') {
    const dir = join(ROOT, GROUP, callName);
    await mkdir(dir);
    await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
    await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
    await writeFile(join(dir, 'cpu.max'), `${Math.max(1000, limits.cpuMillis * 100)} ${CPU_PERIOD_US}`);
    await writeFile(join(dir, 'pids.max'), String(limits.pids));
    return {
      procsFiles: [join(dir, 'cgroup.procs')],
      memoryLimitHit: async () => /oom_kill [1-9]/.test(await readFile(join(dir, 'memory.events'), 'utf8').catch(() => '')),
      killAll: () => killAll([join(dir, 'cgroup.procs')]),
      remove: () => removeDir(dir, [join(dir, 'cgroup.procs')]),
    };
  }
  const dirs = { memory: join(ROOT, 'memory', GROUP, callName), cpu: join(ROOT, 'cpu', GROUP, callName), pids: join(ROOT, 'pids', GROUP, callName) };
  for (const d of Object.values(dirs)) await mkdir(d);
  await writeFile(join(dirs.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
  await writeFile(join(dirs.memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined);
  await writeFile(join(dirs.cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
  await writeFile(join(dirs.cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, limits.cpuMillis * 100)));
  await writeFile(join(dirs.pids, 'pids.max'), String(limits.pids));
  return {
    procsFiles: Object.values(dirs).map((d) => join(d, 'cgroup.procs')),
    // With memory+swap limited too, the kernel counts hits in memory.memsw.failcnt, not memory.failcnt: the
    // OOM kill itself (memory.oom_control's oom_kill, kernels >= 4.13) says it either way.
    memoryLimitHit: async () =>
      /oom_kill [1-9]/.test(await readFile(join(dirs.memory, 'memory.oom_control'), 'utf8').catch(() => '')) ||
      Number((await readFile(join(dirs.memory, 'memory.failcnt'), 'utf8').catch(() => '0')).trim()) > 0,
    killAll: () => killAll([join(dirs.pids, 'cgroup.procs')]),
    remove: async () => {
      for (const d of Object.values(dirs)) await removeDir(d, [join(d, 'cgroup.procs')]);
    },
  };
}

/**
 * A cgroup can be removed once its last process is gone, which can lag the exit by a moment: the sandbox's
 * own processes are in a session of their own (bwrap --new-session) and die with bwrap (--die-with-parent),
 * not with the process group the executor kills. Whatever is still in the cgroup is killed, so nothing of a
 * sandbox outlives its removal.
 */
async function removeDir(dir: string, procsFiles: string[]): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await killAll(procsFiles);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function killAll(procsFiles: string[]): Promise<void> {
  for (const file of procsFiles) {
    const pids = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => /^\d+$/.test(l));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}
