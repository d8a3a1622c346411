import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureEnvoy } from '../../src/toolchain/install.js';
import { startProcess, waitForHttp, type ManagedProcess } from './managed-process.js';

const run = promisify(execFile);

/**
 * The real Envoy binary; `--use-dynamic-base-id` lets several run at once (shared-memory base ids).
 * Tests run one worker thread (`concurrency` 1) so several Envoys share the machine; `'default'` leaves
 * Envoy its own default, one worker per hardware thread, as `npm run gateway` and the Helm chart run it.
 */
export async function startEnvoy(opts: { configPath: string; logDir: string; adminPort: number; name?: string; concurrency?: number | 'default'; extraArgs?: string[] }): Promise<ManagedProcess> {
  const envoy = await ensureEnvoy();
  const proc = startProcess({
    name: opts.name ?? 'envoy',
    command: envoy,
    // Access log lines reach the file within half a second, so tests can follow a decision id into it.
    args: ['-c', opts.configPath, '--use-dynamic-base-id', ...concurrencyArgs(opts.concurrency ?? 1), '-l', 'warning', '--file-flush-interval-msec', '500', ...(opts.extraArgs ?? [])],
    logDir: opts.logDir,
  });
  await waitForHttp(`http://127.0.0.1:${opts.adminPort}/ready`, { process: proc, timeoutMs: 30_000 });
  return proc;
}

function concurrencyArgs(concurrency: number | 'default'): string[] {
  return concurrency === 'default' ? [] : ['--concurrency', String(concurrency)];
}

export async function validateEnvoyConfig(configPath: string): Promise<void> {
  const envoy = await ensureEnvoy();
  try {
    await run(envoy, ['--mode', 'validate', '-c', configPath, '-l', 'error'], { maxBuffer: 8 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`envoy rejected ${configPath}:\n${(e.stderr || e.stdout || e.message).trim()}`);
  }
}
