import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CALL_RECEIVED_LINE, READY_FD_ENV, READY_LINE, REPORTED_LINE } from '../../../shared/sandbox-call.js';
import { createCallCgroup, type CallCgroup, type CallLimits } from './call-cgroup.js';

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
export interface SandboxStart {
  /** Unique per sandbox (names the cgroup). */
  name: string;
  /** Public (see above): no data, no secrets. */
  argv: string[];
  /** Public (see above): no data, no secrets. */
  env: Record<string, string>;
  /** Share the host's network namespace (tools that declare network other than "none"). */
  network: boolean;
  /** Extra host paths made visible read-only at the same place. */
  readOnlyPaths: string[];
  /** Unix sockets of the host bound into the sandbox (the only way out when it has no network). */
  sockets?: { hostPath: string; sandboxPath: string }[];
  maxOutputBytes: number;
  limits: CallLimits;
  bwrapPath?: string;
  /**
   * Give the process a pipe on fd 3 (named in its environment as TOOL_READY_FD) on which it says it is
   * ready for its input: how a pre-started sandbox tells that its start-up is done.
   */
  readyFd?: boolean;
}

/** What a sandbox is given when it is used: its one input, its deadline, its cancellation. */
export interface SandboxInput {
  /**
   * Written to the process's stdin, which is then closed (without it, stdin is empty: EOF at once). Not
   * visible to other processes and not limited in size like argv and env. A process that exits (or is
   * killed) before reading all of it is not an error here: the rest is dropped.
   */
  stdin?: string | Uint8Array;
  /** From the moment the input is given, not from the sandbox's start. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * readyFd sandboxes: once the process says it has reported (REPORTED_LINE) and its stdout ends in a
   * complete line, this decides whether that output is final. If so, the sandbox is done: it is killed
   * (whatever is left of it) and `use` resolves without waiting for its exit (`reported`, no exit status).
   */
  isFinal?: (stdout: string) => boolean;
}

/** A sandbox started and used at once (the cold path, and the isolation tests). */
export type SandboxSpec = SandboxStart & SandboxInput;

export interface SandboxResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  outputExceeded: boolean;
  memoryLimitHit: boolean;
  /** From the input given to the exit. */
  durationMs: number;
  /** The process said it had read its input (readyFd sandboxes only): without it, it never ran it. */
  inputReceived: boolean;
  /** Ended at the process's report (see SandboxInput.isFinal), not at its exit: exitCode and signal are null. */
  reported: boolean;
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

export function bwrapArgs(spec: SandboxStart): string[] {
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

/** Starts a sandbox and gives it its input at once. */
export async function runSandboxed(spec: SandboxSpec): Promise<SandboxResult> {
  const sandbox = await startSandbox(spec);
  const result = await sandbox.use(spec);
  await sandbox.cleanedUp;
  return result;
}

/** Starts the sandboxed process; it runs until it exits on its own, is killed, or is used and finishes. */
export async function startSandbox(spec: SandboxStart): Promise<StartedSandbox> {
  const cgroup = await createCallCgroup(spec.name, spec.limits);
  try {
    return new StartedSandbox(spec, cgroup);
  } catch (err) {
    // spawn throws synchronously (E2BIG...): the cgroup made for this sandbox must not outlive it.
    await cgroup?.remove();
    throw err;
  }
}

/**
 * One started sandbox, used at most once. Its output is read from the start (a process that writes before
 * its input counts against the same cap); its deadline runs from `use`.
 */
export class StartedSandbox {
  readonly name: string;
  /** True once the process said it is ready (readyFd), false if it exited (or cannot say) first. */
  readonly ready: Promise<boolean>;
  /** Resolves once the process has exited (whether used or not). */
  readonly exited: Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process has exited and its cgroup is gone. */
  readonly cleanedUp: Promise<void>;
  private readonly child: ChildProcess;
  private stdout = Buffer.alloc(0);
  private stderrText = '';
  private outputExceeded = false;
  private hasExited = false;
  private inputReceived = false;
  private saidReported = false;
  /** Called when the process's output may have become final (a report, a line of output). */
  private onProgress: (() => void) | undefined;
  private used = false;

  constructor(
    spec: SandboxStart,
    private readonly cgroup: CallCgroup | undefined,
  ) {
    this.name = spec.name;
    // The process joins its cgroup before exec'ing bwrap, so not one allocation escapes the limits.
    const env = spec.readyFd ? { ...spec.env, [READY_FD_ENV]: '3' } : spec.env;
    this.child = spawn(
      '/bin/sh',
      ['-c', 'for f in $TOOLGATE_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"', 'sandbox', spec.bwrapPath ?? 'bwrap', ...bwrapArgs({ ...spec, env })],
      { env: { PATH: '/usr/bin:/bin', TOOLGATE_CGROUP_PROCS: cgroup?.procsFiles.join(' ') ?? '' }, stdio: ['pipe', 'pipe', 'pipe', ...(spec.readyFd ? (['pipe'] as const) : [])], detached: true },
    );
    const stdout = this.child.stdout as Readable;
    const stderr = this.child.stderr as Readable;
    stdout.on('data', (chunk: Buffer) => {
      if (this.outputExceeded) return;
      if (this.stdout.length + chunk.length > spec.maxOutputBytes) {
        this.outputExceeded = true;
        this.kill();
        return;
      }
      this.stdout = Buffer.concat([this.stdout, chunk]);
      this.onProgress?.();
    });
    stderr.on('data', (chunk: Buffer) => {
      this.stderrText = (this.stderrText + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    // stdin: a pipe through sh's exec and bwrap to the sandboxed process, whose write end only we hold. If the
    // process exits or is killed before reading it all, the pending write fails with EPIPE: expected, and
    // handled here, never an unhandled 'error' event.
    (this.child.stdin as Writable).on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') this.stderrText += `\ncannot write the sandbox's stdin: ${err.message}`;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (exitCode, signal) => resolve({ exitCode, signal }));
      this.child.on('error', (err) => {
        this.stderrText += `\ncannot start the sandbox: ${err.message}`;
        resolve({ exitCode: null, signal: null });
      });
    });
    // 'exit' comes before 'close' (which waits for the pipes): the pool stops offering a dead sandbox sooner.
    this.child.once('exit', () => {
      this.hasExited = true;
    });
    void this.exited.then(() => {
      this.hasExited = true;
    });
    const readyPipe = spec.readyFd ? (this.child.stdio[3] as Readable | null) : null;
    this.ready = readyPipe
      ? new Promise<boolean>((resolve) => {
          let said = '';
          readyPipe.on('data', (chunk: Buffer) => {
            said = (said + chunk.toString('utf8')).slice(-64);
            if (said.includes(READY_LINE)) resolve(true);
            if (said.includes(CALL_RECEIVED_LINE)) this.inputReceived = true;
            if (said.includes(REPORTED_LINE)) {
              this.saidReported = true;
              this.onProgress?.();
            }
          });
          readyPipe.on('error', () => resolve(false));
          readyPipe.once('close', () => resolve(false));
          void this.exited.then(() => resolve(false));
        })
      : Promise.resolve(false);
    // Whether the memory limit was hit is read before the cgroup is removed: read after, it is always "no".
    this.memoryHit = this.exited.then(({ exitCode }) => (this.cgroup && exitCode !== 0 ? this.cgroup.memoryLimitHit() : false));
    this.cleanedUp = this.memoryHit.then(() => this.cgroup?.remove(), () => this.cgroup?.remove());
  }

  /** Resolves once the process has exited: whether its cgroup recorded the memory limit being hit. */
  private readonly memoryHit: Promise<boolean>;

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The process has exited (a pre-started sandbox that did: not to be used). */
  get hasEnded(): boolean {
    return this.hasExited;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /**
   * Kills the whole sandbox: its process group (sh's exec'd bwrap) and everything in its cgroup (bwrap's
   * child runs in a session of its own; it would also die with bwrap, but a moment later).
   */
  kill(): void {
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    void this.cgroup?.killAll();
  }

  /** Gives the sandbox its one input and waits for it to exit. A second use is refused. */
  async use(input: SandboxInput): Promise<SandboxResult> {
    if (this.used) throw new Error(`sandbox ${this.name} was already used`);
    this.used = true;
    const started = performance.now();
    let timedOut = false;
    let cancelled = false;
    (this.child.stdin as Writable).end(input.stdin);
    const timer = setTimeout(() => {
      timedOut = true;
      this.kill();
    }, input.timeoutMs);
    const onAbort = (): void => {
      cancelled = true;
      this.kill();
    };
    if (input.signal?.aborted) onAbort();
    input.signal?.addEventListener('abort', onAbort, { once: true });
    const isFinal = input.isFinal;
    const reported = isFinal
      ? new Promise<'reported'>((resolve) => {
          this.onProgress = () => {
            if (!this.saidReported || timedOut || cancelled || this.outputExceeded) return;
            const out = this.stdout;
            if (out.length > 0 && out[out.length - 1] === 0x0a && isFinal(out.toString('utf8'))) resolve('reported');
          };
          this.onProgress();
        })
      : new Promise<never>(() => undefined);
    const ended = await Promise.race([this.exited, reported]);
    this.onProgress = undefined;
    clearTimeout(timer);
    input.signal?.removeEventListener('abort', onAbort);
    if (ended === 'reported') {
      // The call is over: nothing of the sandbox may outlive it.
      this.kill();
      return {
        exitCode: null,
        signal: null,
        stdout: this.stdout.toString('utf8'),
        stderr: this.stderrText,
        timedOut: false,
        cancelled: false,
        outputExceeded: false,
        memoryLimitHit: false,
        durationMs: Math.round(performance.now() - started),
        inputReceived: this.inputReceived,
        reported: true,
      };
    }
    const { exitCode, signal } = ended;
    const memoryLimitHit = await this.memoryHit;
    return {
      exitCode,
      signal,
      stdout: this.stdout.toString('utf8'),
      stderr: this.stderrText,
      timedOut,
      cancelled,
      outputExceeded: this.outputExceeded,
      memoryLimitHit,
      durationMs: Math.round(performance.now() - started),
      inputReceived: this.inputReceived,
      reported: false,
    };
  }
}
