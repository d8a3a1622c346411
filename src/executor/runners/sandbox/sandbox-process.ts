import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createCallCgroup, type CallLimits } from './call-cgroup.js';

/**
 * One process in a fresh set of Linux namespaces (bubblewrap): its own user (mapped to nobody), pid, mount,
 * ipc, uts and network namespaces, so by default no network at all; a read-only view of the system's
 * libraries plus the paths it is given; a private /tmp; only the environment it is given; its own cgroup
 * for memory, CPU and process count; and a wall-clock deadline and an output cap enforced from outside.
 *
 * argv and env become bwrap's own command line (`--setenv K V`), which any local user can read in
 * /proc/<pid>/cmdline and which Linux caps at 128 KiB per string: they carry nothing secret and nothing
 * large. Data (a call's arguments) goes in `stdin`, a pipe only the sandboxed process reads.
 */
export interface SandboxSpec {
  /** Unique per run (names the cgroup). */
  name: string;
  /** Public (see above): no data, no secrets. */
  argv: string[];
  /** Public (see above): no data, no secrets. */
  env: Record<string, string>;
  /**
   * Written to the process's stdin, which is then closed (without it, stdin is empty: EOF at once). Not
   * visible to other processes and not limited in size like argv and env. A process that exits (or is
   * killed) before reading all of it is not an error here: the rest is dropped.
   */
  stdin?: string | Uint8Array;
  /** Share the host's network namespace (tools that declare network other than "none"). */
  network: boolean;
  /** Extra host paths made visible read-only at the same place. */
  readOnlyPaths: string[];
  /** Unix sockets of the host bound into the sandbox (the only way out when it has no network). */
  sockets?: { hostPath: string; sandboxPath: string }[];
  timeoutMs: number;
  maxOutputBytes: number;
  limits: CallLimits;
  signal?: AbortSignal;
  bwrapPath?: string;
}

export interface SandboxResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  outputExceeded: boolean;
  memoryLimitHit: boolean;
  durationMs: number;
}

const STDERR_KEEP = 64 * 1024;
const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];

/** /bin, /lib... are symlinks into /usr on merged-usr systems: recreate the link, bind real directories. */
function systemView(): string[] {
  const args: string[] = [];
  for (const p of SYSTEM_PATHS) {
    if (!existsSync(p)) continue;
    const st = lstatSync(p);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(p), p);
    else args.push('--ro-bind', p, p);
  }
  return args;
}

export function bwrapArgs(spec: SandboxSpec): string[] {
  const args = [
    '--unshare-all',
    ...(spec.network ? ['--share-net', '--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf', '--ro-bind-try', '/etc/ssl', '/etc/ssl', '--ro-bind-try', '/etc/hosts', '/etc/hosts'] : []),
    '--uid', '65534',
    '--gid', '65534',
    '--hostname', 'toolgate-sandbox',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--clearenv',
    ...Object.entries(spec.env).flatMap(([k, v]) => ['--setenv', k, v]),
    ...systemView(),
    '--proc', '/proc',
    '--dev', '/dev',
    // The private /tmp comes before the extra binds: a bind under /tmp (a checkout there) must stay visible.
    '--tmpfs', '/tmp',
    ...spec.readOnlyPaths.filter((p) => !SYSTEM_PATHS.some((s) => p === s || p.startsWith(`${s}/`))).flatMap((p) => ['--ro-bind', p, p]),
    ...(spec.sockets ?? []).flatMap((s) => ['--bind', s.hostPath, s.sandboxPath]),
    '--chdir', '/tmp',
    '--',
    ...spec.argv,
  ];
  return args;
}

export async function runSandboxed(spec: SandboxSpec): Promise<SandboxResult> {
  const started = performance.now();
  const cgroup = await createCallCgroup(spec.name, spec.limits);
  // The process joins its cgroup before exec'ing bwrap, so not one allocation escapes the limits.
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(
      '/bin/sh',
      ['-c', 'for f in $TOOLGATE_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"', 'sandbox', spec.bwrapPath ?? 'bwrap', ...bwrapArgs(spec)],
      { env: { PATH: '/usr/bin:/bin', TOOLGATE_CGROUP_PROCS: cgroup?.procsFiles.join(' ') ?? '' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
  } catch (err) {
    // spawn throws synchronously (E2BIG...): the cgroup made for this run must not outlive it.
    await cgroup?.remove();
    throw err;
  }

  let stdout = Buffer.alloc(0);
  let stderr = '';
  let outputExceeded = false;
  let timedOut = false;
  let cancelled = false;
  const kill = (): void => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (outputExceeded) return;
    if (stdout.length + chunk.length > spec.maxOutputBytes) {
      outputExceeded = true;
      kill();
      return;
    }
    stdout = Buffer.concat([stdout, chunk]);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });
  // stdin: a pipe through sh's exec and bwrap to the sandboxed process, whose write end only we hold; ended
  // once everything is written, so the reader sees EOF. If the process exits or is killed before reading it
  // all, the pending write fails with EPIPE: expected, and handled here, never an unhandled 'error' event.
  child.stdin.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') stderr += `\ncannot write the sandbox's stdin: ${err.message}`;
  });
  child.stdin.end(spec.stdin);
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, spec.timeoutMs);
  const onAbort = (): void => {
    cancelled = true;
    kill();
  };
  if (spec.signal?.aborted) onAbort();
  spec.signal?.addEventListener('abort', onAbort, { once: true });

  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('close', (code, sig) => resolve([code, sig]));
    child.on('error', (err) => {
      stderr += `\ncannot start the sandbox: ${err.message}`;
      resolve([null, null]);
    });
  });
  clearTimeout(timer);
  spec.signal?.removeEventListener('abort', onAbort);
  const memoryLimitHit = cgroup ? await cgroup.memoryLimitHit() : false;
  await cgroup?.remove();
  return {
    exitCode,
    signal,
    stdout: stdout.toString('utf8'),
    stderr,
    timedOut,
    cancelled,
    outputExceeded,
    memoryLimitHit,
    durationMs: Math.round(performance.now() - started),
  };
}
