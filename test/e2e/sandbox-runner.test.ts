import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { basename, join } from 'node:path';
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

  it('a spawn that fails (one argument over 128 KiB) rejects, and leaves no cgroup behind', async () => {
    const s = spec('0', { env: { PATH: '/usr/bin:/bin', HUGE: 'x'.repeat(200 * 1024) } });
    await expect(runSandboxed(s)).rejects.toThrow(/E2BIG/);
    for (const dir of [`/sys/fs/cgroup/toolgate/${s.name}`, `/sys/fs/cgroup/memory/toolgate/${s.name}`]) expect(existsSync(dir), dir).toBe(false);
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

    it('passes arguments larger than one command-line string may be (128 KiB), multi-byte characters intact', async () => {
      // 300 Ki characters, 500 KiB of UTF-8: well past Linux's limit on one argv or environment string.
      const message = 'ab€'.repeat(100 * 1024);
      const out = await runner.run(invocation(echo, { message }));
      expect(out.status).toBe('succeeded');
      const result = out.status === 'succeeded' ? (out.result as { message: string; length: number }) : undefined;
      expect(result?.length).toBe(300 * 1024);
      expect(result?.message === message).toBe(true);
    });

    it("keeps a call's arguments out of every process's command line and environment while it runs", async () => {
      const callId = `call-cmdline-${randomBytes(6).toString('hex')}`;
      const marker = `secret-marker-${randomBytes(8).toString('hex')}`;
      const running = runner.run({ ...invocation({ ...echo, name: 'sleep' }, { seconds: 1.5, namespace: marker }), callId });
      let done = false;
      void running.finally(() => {
        done = true;
      });
      const sandboxes = new Set<string>();
      const leaks = new Set<string>();
      while (!done) {
        for (const pid of await readdir('/proc').catch(() => [])) {
          if (!/^\d+$/.test(pid)) continue;
          for (const file of ['cmdline', 'environ']) {
            // Processes come and go; one that is gone (or not ours to read) is skipped.
            const text = await readFile(`/proc/${pid}/${file}`).then((b) => b.toString('utf8'), () => '');
            if (text.includes(marker)) leaks.add(`${pid}/${file}`);
            // The sandbox's bwrap: started for the tool (the call itself goes in on stdin, never on a command line).
            if (file === 'cmdline' && text.includes('TOOL_NAME\0sleep\0') && text.split('\0').some((a) => basename(a) === 'bwrap')) sandboxes.add(pid);
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await running).toMatchObject({ status: 'succeeded' });
      // The sandbox's process was seen (so the probe looked while the call ran), and nothing showed the arguments.
      expect(sandboxes.size).toBeGreaterThan(0);
      expect([...leaks]).toEqual([]);
    });

    it('the runner exits 2, saying why, when it cannot read its arguments from stdin', async () => {
      const runnerSpec = (over: Partial<SandboxSpec>): SandboxSpec =>
        spec('', {
          argv: [node, join(REPO_ROOT, 'dist', 'src', 'runner', 'main.js')],
          env: { PATH: '/usr/bin:/bin', TOOL_NAME: 'echo', CALL_ID: 'call-stdin', TOOL_PARAMS_STDIN: '1' },
          readOnlyPaths: [join(node, '..'), join(REPO_ROOT, 'dist'), join(REPO_ROOT, 'node_modules'), join(REPO_ROOT, 'package.json')],
          ...over,
        });
      const empty = await runSandboxed(runnerSpec({}));
      expect(empty.exitCode).toBe(2);
      expect(empty.stderr).toMatch(/tool runner: cannot read the arguments from stdin: .*empty/);
      // Past the runner's bound: it stops reading and exits while the executor is still writing (EPIPE there).
      const huge = await runSandboxed(runnerSpec({ stdin: JSON.stringify({ message: 'x'.repeat(17 * 1024 * 1024) }) }));
      expect(huge.exitCode).toBe(2);
      expect(huge.stderr).toMatch(/tool runner: cannot read the arguments from stdin: .*exceed/);
    });
  });

  it('survives a process that exits without reading its stdin', async () => {
    const r = await runSandboxed(spec(`console.log('bye'); process.exit(0)`, { stdin: 'x'.repeat(8 * 1024 * 1024) }));
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe('bye');
    // And a process that does read it gets all of it.
    const read = await runSandboxed(spec(`let n = 0; process.stdin.on('data', (c) => { n += c.length }).on('end', () => console.log(n))`, { stdin: 'y'.repeat(3 * 1024 * 1024) }));
    expect(read.stdout.trim()).toBe(String(3 * 1024 * 1024));
  });
});
