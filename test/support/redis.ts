import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRedisServer } from '../../src/toolchain/redis.js';
import { freePort, startProcess, waitForTcp, type ManagedProcess } from './managed-process.js';

export interface TestRedis {
  url: string;
  port: number;
  process: ManagedProcess;
  /** Kills the server (SIGKILL: a crash, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was persisted). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real redis-server for one test file (or bench run) on a free loopback port, in its own temporary
 * directory, with persistence off (no RDB, no AOF: nothing left behind), stopped by pid.
 */
export async function startRedis(): Promise<TestRedis> {
  const binary = await ensureRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-redis-'));
  let port = 0;
  let proc: ManagedProcess | undefined;
  const launch = async (): Promise<ManagedProcess> => {
    const p = startProcess({
      name: 'redis',
      command: binary,
      // protected-mode stays on (loopback only); no config file: the package's /etc/redis is not read.
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
      logDir: dir,
    });
    await waitForTcp(port, { process: p, timeoutMs: 20_000 });
    return p;
  };
  // freePort() closes the port before redis binds it: another process may take it in between; try again then.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      proc = await launch();
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  const handle: TestRedis = {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    process: proc,
    async kill() {
      const p = handle.process;
      if (p.hasExited()) return;
      process.kill(p.pid, 'SIGKILL');
      await p.exited;
    },
    async restart() {
      if (!handle.process.hasExited()) await handle.process.stop();
      handle.process = await launch();
    },
    async stop() {
      await handle.process.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
