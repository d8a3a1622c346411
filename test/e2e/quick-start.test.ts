import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { freePort, startProcess, type ManagedProcess } from '../support/managed-process.js';

const run = promisify(execFile);

/**
 * The README's quick start, as a user runs it: `npm run gateway` (here its compiled entry, on free ports and
 * a temporary state directory), then the `curl` commands it prints, pasted into a shell as they are.
 */
describe('quick start: npm run gateway', () => {
  let gateway: ManagedProcess;
  let printed: string;
  let ports: Record<string, number>;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-quick-start-'));
    await mkdir(join(dir, 'logs'));
    ports = { http: await freePort(), mtls: await freePort(), admin: await freePort(), authz: await freePort(), authzOps: await freePort(), executor: await freePort(), executorOps: await freePort() };
    gateway = startProcess({
      name: 'gateway',
      command: process.execPath,
      args: [join(REPO_ROOT, 'dist', 'src', 'cli', 'gateway.js')],
      cwd: REPO_ROOT,
      logDir: join(dir, 'logs'),
      env: {
        TOOLGATE_STATE_DIR: join(dir, 'state'),
        TOOLGATE_HTTP_PORT: String(ports.http),
        TOOLGATE_MTLS_PORT: String(ports.mtls),
        TOOLGATE_ADMIN_PORT: String(ports.admin),
        TOOLGATE_AUTHZ_PORT: String(ports.authz),
        TOOLGATE_AUTHZ_OPS_PORT: String(ports.authzOps),
        TOOLGATE_EXECUTOR_PORT: String(ports.executor),
        TOOLGATE_EXECUTOR_OPS_PORT: String(ports.executorOps),
      },
    });
    const deadline = Date.now() + 120_000;
    for (;;) {
      printed = await readFile(gateway.logPath, 'utf8');
      if (printed.includes('Ctrl-C stops everything')) break;
      if (gateway.hasExited() || Date.now() > deadline) throw new Error(`the gateway did not come up:\n${gateway.logTail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
  });

  /** The printed commands, joined across their line continuations. */
  const commands = (): string[] =>
    printed
      .replace(/\\\n\s*/g, '')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('curl '));

  const shell = async (command: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const { stdout } = await run('/bin/sh', ['-c', `${command} -w '\\n%{http_code}'`], { cwd: REPO_ROOT });
    const lines = stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    return { status, body: JSON.parse(lines.join('\n')) as Record<string, unknown> };
  };

  it('prints a JWT call that runs the echo tool in the sandbox', async () => {
    const jwtCall = commands().find((c) => c.includes('authorization: Bearer'));
    expect(jwtCall).toBeDefined();
    const res = await shell(jwtCall as string);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tool: 'echo', status: 'succeeded', result: { message: 'hello', length: 5 } });
  });

  it('prints an mTLS call that the policy refuses, with its reason', async () => {
    const mtlsCall = commands().find((c) => c.includes('--cert '));
    expect(mtlsCall).toBeDefined();
    const res = await shell(mtlsCall as string);
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).toMatch(/policy_denied/);
    expect(JSON.stringify(res.body)).toMatch(/production/);
  });

  it('refuses a call without credentials with 401', async () => {
    const res = await shell(`curl -s -d '{"message":"hello"}' http://127.0.0.1:${ports.http}/v1/tools/echo`);
    expect(res.status).toBe(401);
  });

  it('Ctrl-C stops everything it started', async () => {
    process.kill(gateway.pid, 'SIGINT');
    expect(await gateway.exited).toBe(0);
    // Envoy, the authz server and the executor no longer answer.
    for (const port of [ports.admin, ports.http, ports.authzOps, ports.executorOps]) {
      await expect(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    }
  });
});
