import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadToolCatalogFile, type ToolDefinition } from '../../src/catalog/tool-catalog.js';
import { LocalSandboxRunner } from '../../src/executor/runners/local-sandbox-runner.js';
import type { ToolInvocation } from '../../src/executor/runners/runner.js';
import { runSandboxed, type SandboxSpec } from '../../src/executor/runners/sandbox/sandbox-process.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureBubblewrap } from '../../src/toolchain/bubblewrap.js';

/** The local sandbox's isolation, shown with probes run exactly as tool calls are. */
describe('local sandbox', () => {
  let server: Server;
  let port: number;
  let secretPath: string;
  const node = process.execPath;

  beforeAll(async () => {
    await ensureBubblewrap();
    server = createServer((s) => {
      s.on('error', () => undefined);
      s.end('reachable\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as { port: number }).port;
    const dir = await mkdtemp(join(REPO_ROOT, '.sandbox-secret-'));
    secretPath = join(dir, 'secret.txt');
    await writeFile(secretPath, 'host secret');
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const { rm } = await import('node:fs/promises');
    await rm(join(secretPath, '..'), { recursive: true, force: true });
  });

  const spec = (script: string, over: Partial<SandboxSpec> = {}): SandboxSpec => ({
    name: `test-${Math.random().toString(16).slice(2)}`,
    argv: [node, '-e', script],
    env: { PATH: '/usr/bin:/bin', DECLARED: 'yes' },
    network: false,
    readOnlyPaths: [join(node, '..')],
    timeoutMs: 10_000,
    maxOutputBytes: 64 * 1024,
    limits: { memoryBytes: 256 * 1024 * 1024, cpuMillis: 1000, pids: 64 },
    ...over,
  });
  const connectProbe = (p: number): string =>
    `require('net').connect(${p}, '127.0.0.1').on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log('refused ' + e.code); process.exit(0) })`;

  it('has no network unless the tool declares it', async () => {
    const isolated = await runSandboxed(spec(connectProbe(port)));
    expect(isolated.stdout.trim()).toMatch(/^refused/);
    const shared = await runSandboxed(spec(connectProbe(port), { network: true }));
    expect(shared.stdout.trim()).toBe('connected');
  });

  it('cannot read a file outside its read-only view, and cannot write to the view', async () => {
    const read = await runSandboxed(spec(`try { console.log(require('fs').readFileSync(${JSON.stringify(secretPath)}, 'utf8')) } catch (e) { console.log('denied ' + e.code) }`));
    expect(read.stdout.trim()).toBe('denied ENOENT');
    const write = await runSandboxed(spec(`try { require('fs').writeFileSync('/usr/x', 'x'); console.log('wrote') } catch (e) { console.log('denied ' + e.code) }`));
    expect(write.stdout.trim()).toMatch(/^denied (EROFS|EACCES|EPERM)/);
    const home = await runSandboxed(spec(`console.log(require('fs').existsSync('/root') || require('fs').existsSync('/work') ? 'visible' : 'hidden')`));
    expect(home.stdout.trim()).toBe('hidden');
  });

  it('sees only the declared environment and runs as an unprivileged user', async () => {
    const r = await runSandboxed(spec(`console.log(JSON.stringify({ keys: Object.keys(process.env).sort(), uid: process.getuid() }))`));
    // PWD is bwrap's (it sets the working directory); nothing of the executor's environment leaks in.
    expect(JSON.parse(r.stdout)).toEqual({ keys: ['DECLARED', 'PATH', 'PWD'], uid: 65534 });
  });

  it('kills a process past its deadline, leaving nothing behind', async () => {
    const r = await runSandboxed(spec(`console.log(process.pid); setInterval(() => {}, 1000)`, { timeoutMs: 500 }));
    expect(r.timedOut).toBe(true);
    const { execFileSync } = await import('node:child_process');
    const stray = execFileSync('sh', ['-c', `pgrep -f "setInterval\\(\\(\\) => \\{\\}, 1000\\)" || true`]).toString().trim();
    expect(stray).toBe('');
  });

  it('caps output', async () => {
    const r = await runSandboxed(spec(`process.stdout.write('x'.repeat(1024 * 1024))`, { maxOutputBytes: 1024 }));
    expect(r.outputExceeded).toBe(true);
  });

  it('enforces the memory limit', async () => {
    const r = await runSandboxed(spec(`const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1))`, { limits: { memoryBytes: 64 * 1024 * 1024, cpuMillis: 1000, pids: 64 } }));
    expect(r.exitCode).not.toBe(0);
    expect(r.timedOut).toBe(false);
  });

  it('stops on cancellation', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const r = await runSandboxed(spec(`setInterval(() => {}, 1000)`, { signal: controller.signal }));
    expect(r.cancelled).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  describe('runner outcomes', () => {
    let echo: ToolDefinition;
    const runner = new LocalSandboxRunner();
    const invocation = (tool: ToolDefinition, args: Record<string, unknown>, signal = new AbortController().signal): ToolInvocation => ({
      callId: 'call-test',
      tool,
      arguments: args,
      agentId: 'ops-bot',
      decisionId: 'd',
      policyRevision: 'r',
      signal,
    });
    beforeAll(async () => {
      echo = (await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'))).get('echo') as ToolDefinition;
    });

    it('reports a crashing tool as failed with its exit status and message', async () => {
      const out = await runner.run(invocation({ ...echo, name: 'fail' }, { exit_code: 7, message: 'boom' }));
      expect(out).toMatchObject({ status: 'failed', exitCode: 7 });
      expect(out.status === 'failed' && out.error).toMatch(/boom/);
    });

    it('reports a timeout', async () => {
      const out = await runner.run(invocation({ ...echo, name: 'sleep', execution: { ...echo.execution, timeout_seconds: 1 } }, { seconds: 5 }));
      expect(out.status).toBe('timeout');
    });
  });
});
