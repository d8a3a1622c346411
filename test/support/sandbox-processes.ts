import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * The local runner's sandboxes as the kernel sees them, for tests that count processes: each sandbox is one
 * bwrap process (sh exec's it) whose parent is the executor, with the tool's name on its command line; under
 * it, bwrap's init and the runner.
 */
interface Proc {
  pid: number;
  ppid: number;
  state: string;
  argv: string[];
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after its last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(entry), ppid: Number(ppid), state: state ?? '?', argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The sandboxes (their bwrap pids) that `parentPid` started for `tool`, live ones only. */
export function sandboxesOf(parentPid: number, tool: string): number[] {
  return processes()
    .filter((p) => p.ppid === parentPid && p.state !== 'Z' && basename(p.argv[0] ?? '') === 'bwrap')
    .filter((p) => p.argv.some((a, i) => a === 'TOOL_NAME' && p.argv[i + 1] === tool))
    .map((p) => p.pid)
    .sort((a, b) => a - b);
}

/** `pid` and every live process under it. */
export function processTree(pid: number): number[] {
  const all = processes().filter((p) => p.state !== 'Z');
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return [...tree].filter((p) => p === pid || all.some((q) => q.pid === p));
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The toolgate cgroup directories (v2 or v1) a process is in, e.g. /sys/fs/cgroup/memory/toolgate/pool-echo-…. */
export function toolgateCgroupsOf(pid: number): string[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const line of text.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!path?.startsWith('/toolgate/')) continue;
    if (controllers === '') dirs.push(`/sys/fs/cgroup${path}`);
    else for (const c of (controllers ?? '').split(',')) if (['memory', 'cpu', 'pids'].includes(c)) dirs.push(`/sys/fs/cgroup/${c}${path}`);
  }
  return dirs;
}

/** For a failure message: what a process is and where (its command line, its parent, its cgroups). */
export function describeProcess(pid: number): string {
  const p = processes().find((q) => q.pid === pid);
  return p ? `${pid} (parent ${p.ppid}, ${p.state}): ${p.argv.join(' ').slice(0, 160)} in ${toolgateCgroupsOf(pid).join(',') || 'no toolgate cgroup'}` : `${pid} (gone)`;
}
