import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { freePort, startProcess, type ManagedProcess } from '../support/managed-process.js';
import { startCollector, type Collector } from '../support/otel-collector.js';
import { isAlive, processTree, sandboxesOf } from '../support/sandbox-processes.js';
import { waitUntil } from '../support/wait-until.js';

const run = promisify(execFile);

type Ports = Record<'http' | 'mtls' | 'admin' | 'authz' | 'authzOps' | 'executor' | 'executorOps', number>;

/** The gateway's compiled entry (what `npm run gateway` runs after building), on free ports, until it prints its help. */
async function startGateway(env: Record<string, string> = {}): Promise<{ gateway: ManagedProcess; printed: string; ports: Ports; stateDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-quick-start-'));
  await mkdir(join(dir, 'logs'));
  const ports: Ports = { http: await freePort(), mtls: await freePort(), admin: await freePort(), authz: await freePort(), authzOps: await freePort(), executor: await freePort(), executorOps: await freePort() };
  const gateway = startProcess({
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
      ...env,
    },
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const printed = await readFile(gateway.logPath, 'utf8');
    if (printed.includes('Ctrl-C stops everything')) return { gateway, printed, ports, stateDir: join(dir, 'state') };
    if (gateway.hasExited() || Date.now() > deadline) throw new Error(`the gateway did not come up:\n${gateway.logTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The printed curl commands, joined across their line continuations. */
function printedCommands(printed: string): string[] {
  return printed
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('curl '));
}

async function shell(command: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const { stdout } = await run('/bin/sh', ['-c', `${command} -w '\\n%{http_code}'`], { cwd: REPO_ROOT });
  const lines = stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: JSON.parse(lines.join('\n')) as Record<string, unknown> };
}

/**
 * The README's quick start, as a user runs it: `npm run gateway` (here its compiled entry, on free ports and
 * a temporary state directory), then the `curl` commands it prints, pasted into a shell as they are.
 */
describe('quick start: npm run gateway', () => {
  let gateway: ManagedProcess;
  let printed: string;
  let ports: Ports;
  let stateDir: string;

  beforeAll(async () => {
    ({ gateway, printed, ports, stateDir } = await startGateway());
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
  });

  const commands = (): string[] => printedCommands(printed);

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

  it('takes a body up to its 2 MiB limit, and answers a larger one with a structured 413', async () => {
    const jwt = (await readFile(join(stateDir, 'dev', 'ops-bot.jwt'), 'utf8')).trim();
    const post = (body: string): Promise<Response> =>
      fetch(`http://127.0.0.1:${ports.http}/v1/tools/echo`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, body });
    // 1.5 MiB of JSON (whitespace around a small message: the result stays under the tool's output cap).
    const ok = await post(`{"message": "hello"${' '.repeat(1536 * 1024)}}`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { result: unknown }).result).toEqual({ message: 'hello', length: 5 });
    const tooLarge = await post(`{"message": "hello"${' '.repeat(3 * 1024 * 1024)}}`);
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });

  it('keeps one sandbox waiting per tool, which the next call takes', async () => {
    const pool = async (): Promise<Record<string, { ready: number }>> =>
      ((await (await fetch(`http://127.0.0.1:${ports.executorOps}/readyz`)).json()) as { status: { sandbox_pool: Record<string, { ready: number }> } }).status.sandbox_pool;
    await waitUntil('every tool has a sandbox waiting', async () => Object.values(await pool()).length > 1 && Object.values(await pool()).every((p) => p.ready === 1), 60_000);
    await waitUntil('one echo sandbox', () => sandboxesOf(gateway.pid, 'echo').length === 1);
    const [waiting] = sandboxesOf(gateway.pid, 'echo');
    const jwtCall = commands().find((c) => c.includes('authorization: Bearer'));
    expect((await shell(jwtCall as string)).status).toBe(200);
    await waitUntil('the taken sandbox is gone', () => !isAlive(waiting as number), 2000, 10);
  });

  it('Ctrl-C stops everything it started', async () => {
    await waitUntil('the echo sandbox was replaced', () => sandboxesOf(gateway.pid, 'echo').length === 1);
    const sandboxes = sandboxesOf(gateway.pid, 'echo').flatMap(processTree);
    process.kill(gateway.pid, 'SIGINT');
    expect(await gateway.exited).toBe(0);
    // No sandbox outlives it.
    expect(sandboxes.filter(isAlive)).toEqual([]);
    // Envoy, the authz server and the executor no longer answer.
    for (const port of [ports.admin, ports.http, ports.authzOps, ports.executorOps]) {
      await expect(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    }
  });
});

describe('npm run gateway with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let collector: Collector;
  let gateway: ManagedProcess;
  let printed: string;

  beforeAll(async () => {
    collector = await startCollector();
    ({ gateway, printed } = await startGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint }));
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    await collector?.stop();
  });

  it('makes each call one trace: Envoy, the gateway (authz and executor) and the sandboxed runner', async () => {
    const traceId = randomBytes(16).toString('hex');
    const jwtCall = printedCommands(printed).find((c) => c.includes('authorization: Bearer'));
    const res = await shell(`${jwtCall as string} -H 'traceparent: 00-${traceId}-${randomBytes(8).toString('hex')}-01'`);
    expect(res.status).toBe(200);
    const spans = await collector.waitForTrace(traceId, (t) => ['toolgate-envoy', 'toolgate-gateway', 'toolgate-runner'].every((svc) => t.some((s) => s.service === svc)) && t.some((s) => s.name === 'toolgate.executor.call'));
    const names = new Set(spans.filter((s) => s.service === 'toolgate-gateway').map((s) => s.name));
    expect(names).toEqual(new Set(['toolgate.authz.check', 'toolgate.policy.evaluate', 'toolgate.executor.call', 'toolgate.runner.run']));
    expect(spans.filter((s) => s.service === 'toolgate-runner').map((s) => s.name)).toEqual(['execute_tool echo']);
  });

  it('refuses an endpoint Envoy cannot export to, saying which form it needs', async () => {
    await expect(startGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: 'unix:///tmp/otlp.sock' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be http:\/\/host:port/);
  });
});
