import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { exitOnInterrupt } from './interrupt.js';

/**
 * Child processes for tests: output to a log file, readiness waits that fail fast (with the log tail) when
 * the process dies, and stop by pid (SIGTERM, then SIGKILL). Every process started here is stopped by
 * stopAll() and, as a last resort, when the test process exits.
 */
export interface ManagedProcess {
  pid: number;
  name: string;
  logPath: string;
  exited: Promise<number | null>;
  hasExited(): boolean;
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

const running = new Set<ManagedProcess>();
let counter = 0;

export function startProcess(opts: { name: string; command: string; args: string[]; env?: NodeJS.ProcessEnv; cwd?: string; logDir: string }): ManagedProcess {
  const logPath = join(opts.logDir, `${opts.name}-${process.pid}-${++counter}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(opts.command, opts.args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', fd, fd], detached: false });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${opts.name}: ${opts.command}`);
  let exitedFlag = false;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      exitedFlag = true;
      resolve(code ?? (signal ? 128 : null));
    });
    child.on('error', () => {
      exitedFlag = true;
      resolve(null);
    });
  });
  const proc: ManagedProcess = {
    pid: child.pid,
    name: opts.name,
    logPath,
    exited,
    hasExited: () => exitedFlag,
    logTail: (lines = 40) => {
      try {
        return readFileSync(logPath, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    stop: async () => {
      running.delete(proc);
      if (exitedFlag) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
  running.add(proc);
  return proc;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/**
 * For scripts (the benchmarks): an interrupted run (Ctrl-C, kill) runs its registered clean-ups (the real
 * node's, interrupt.ts), then exits through the hook below, so what it started is stopped too. Node's default
 * for these signals exits without running 'exit' handlers.
 */
export function exitOnSignals(): void {
  exitOnInterrupt();
}

process.on('exit', () => {
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function diedError(p: ManagedProcess, what: string): Error {
  return new Error(`${p.name} (pid ${p.pid}) exited while waiting for ${what}:\n${p.logTail()}`);
}

export async function waitForTcp(port: number, opts: { host?: string; timeoutMs?: number; process?: ManagedProcess } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (opts.process?.hasExited()) throw diedError(opts.process, `port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, opts.host ?? '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${opts.host ?? '127.0.0.1'}:${port} after ${opts.timeoutMs ?? 20_000} ms${opts.process ? `\n${opts.process.logTail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForHttp(
  url: string,
  opts: { timeoutMs?: number; accept?: (status: number, body: string) => boolean; process?: ManagedProcess } = {},
): Promise<void> {
  const accept = opts.accept ?? ((status: number) => status === 200);
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last = 'no answer';
  for (;;) {
    if (opts.process?.hasExited()) throw diedError(opts.process, url);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (accept(res.status, body)) return;
      last = `${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${opts.timeoutMs ?? 20_000} ms (last: ${last})${opts.process ? `\n${opts.process.logTail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
