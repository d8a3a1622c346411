import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadToolCatalogFile, type ToolDefinition } from '../../src/catalog/tool-catalog.js';
import { LocalSandboxRunner } from '../../src/executor/runners/local-sandbox-runner.js';
import type { ToolInvocation } from '../../src/executor/runners/runner.js';
import { startSandbox } from '../../src/executor/runners/sandbox/sandbox-process.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureBubblewrap } from '../../src/toolchain/bubblewrap.js';
import { describeProcess, isAlive, processTree, sandboxesOf, toolgateCgroupsOf } from '../support/sandbox-processes.js';
import { waitUntil } from '../support/wait-until.js';
import { startStack, type Stack } from './stack.js';

/**
 * The local runner's pool of pre-started single-use sandboxes, shown by counting processes: every call
 * consumes exactly one sandbox (which then exits), concurrent calls consume different ones, the pool refills,
 * outcomes (crash, timeout, cancellation) are those of the cold path, and stopping leaves nothing behind.
 */
let echo: ToolDefinition;
const catalogPath = join(REPO_ROOT, 'src', 'catalog', 'tools.yaml');
let seq = 0;

const invocation = (tool: ToolDefinition, args: Record<string, unknown>, signal = new AbortController().signal): ToolInvocation => ({
  callId: `call-pool-${process.pid}-${++seq}`,
  tool,
  arguments: args,
  agentId: 'ops-bot',
  decisionId: 'd',
  policyRevision: 'r',
  signal,
});

const readyIn = (runner: LocalSandboxRunner, tool: string): number => runner.poolStats()[tool]?.ready ?? 0;

beforeAll(async () => {
  await ensureBubblewrap();
  echo = (await loadToolCatalogFile(catalogPath)).get('echo') as ToolDefinition;
});

describe('the sandbox pool (runner)', () => {
  const fail = (): ToolDefinition => ({ ...echo, name: 'fail' });
  // One definition per tool name, as in a catalog: a sandbox is taken only for the settings it was started for.
  const sleep = (): ToolDefinition => ({ ...echo, name: 'sleep', execution: { ...echo.execution, timeout_seconds: 3 } });
  let runner: LocalSandboxRunner;

  beforeAll(async () => {
    runner = new LocalSandboxRunner({ pool: { size: 2 } });
    runner.warm([echo, fail(), sleep()]);
    await waitUntil('the pool is ready', () => readyIn(runner, 'echo') === 2 && readyIn(runner, 'fail') === 2 && readyIn(runner, 'sleep') === 2, 60_000);
  });
  afterAll(async () => {
    await runner?.close();
  });

  it('serves each call from its own sandbox, which exits after that one call; the pool refills', async () => {
    const consumed = new Set<number>();
    for (let i = 0; i < 5; i++) {
      await waitUntil('the pool is full again', () => readyIn(runner, 'echo') === 2 && sandboxesOf(process.pid, 'echo').length === 2, 30_000);
      const waiting = sandboxesOf(process.pid, 'echo');
      const out = await runner.run(invocation(echo, { message: `call ${i}` }));
      expect(out).toMatchObject({ status: 'succeeded', result: { message: `call ${i}` } });
      // Exactly one of the sandboxes that were waiting is gone: the one this call took (killed once it has
      // reported, so the answer does not wait for its exit; gone a moment later).
      await waitUntil('the taken sandbox is gone', () => waiting.some((pid) => !isAlive(pid)), 2000, 10);
      const gone = waiting.filter((pid) => !isAlive(pid));
      expect(gone).toHaveLength(1);
      consumed.add(gone[0] as number);
    }
    // Five calls, five different sandboxes, none of them alive: no sandbox served two calls.
    expect(consumed.size).toBe(5);
    expect([...consumed].filter(isAlive)).toEqual([]);
    await waitUntil('the pool refilled', () => readyIn(runner, 'echo') === 2, 30_000);
  });

  it('gives concurrent calls different sandboxes, each its own call only', async () => {
    await waitUntil('the pool is full', () => readyIn(runner, 'echo') === 2 && sandboxesOf(process.pid, 'echo').length === 2, 30_000);
    const waiting = sandboxesOf(process.pid, 'echo');
    const calls = [0, 1, 2, 3].map((i) => invocation(echo, { message: `concurrent ${i}` }));
    const outs = await Promise.all(calls.map((c) => runner.run(c)));
    outs.forEach((out, i) => expect(out).toMatchObject({ status: 'succeeded', result: { message: `concurrent ${i}` } }));
    // Both waiting sandboxes were used (and are gone); the two calls beyond the pool's size started their own.
    await waitUntil('both taken sandboxes are gone', () => waiting.every((pid) => !isAlive(pid)), 2000, 10).catch(() => undefined);
    expect(waiting.filter(isAlive)).toEqual([]);
  });

  it('reports a crashing tool as without the pool: failed, its exit status and message', async () => {
    const waiting = sandboxesOf(process.pid, 'fail');
    const out = await runner.run(invocation(fail(), { exit_code: 7, message: 'boom' }));
    expect(out).toMatchObject({ status: 'failed', exitCode: 7 });
    expect(out.status === 'failed' && out.error).toMatch(/boom/);
    expect(waiting.filter((pid) => !isAlive(pid))).toHaveLength(1);
  });

  it('applies the deadline from the moment the call takes its sandbox', async () => {
    await waitUntil('the sleep sandboxes are ready', () => readyIn(runner, 'sleep') === 2 && sandboxesOf(process.pid, 'sleep').length === 2, 30_000);
    const waiting = sandboxesOf(process.pid, 'sleep');
    // The sandboxes have been waiting for longer than nothing: the deadline (3 s) starts with the call.
    const started = Date.now();
    const out = await runner.run(invocation(sleep(), { seconds: 10 }));
    expect(out.status).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(waiting.filter((pid) => !isAlive(pid))).toHaveLength(1);
  });

  it('kills the taken sandbox within 1 s of a cancellation', async () => {
    await waitUntil('the sleep sandboxes are ready', () => readyIn(runner, 'sleep') === 2 && sandboxesOf(process.pid, 'sleep').length === 2, 30_000);
    const trees = sandboxesOf(process.pid, 'sleep').map(processTree);
    const controller = new AbortController();
    const running = runner.run(invocation(sleep(), { seconds: 20 }, controller.signal));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    controller.abort();
    expect(await running).toMatchObject({ status: 'cancelled' });
    // The one the call took is gone, all of it, within 1 s; the other still waits.
    await waitUntil('the cancelled sandbox is gone', () => trees.some((tree) => tree.every((pid) => !isAlive(pid))), 2000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(trees.filter((tree) => tree.every(isAlive))).toHaveLength(1);
  });

  it('runs a call whose waiting sandbox dies as it is taken, once, and replaces the dead sandbox', async () => {
    await waitUntil('the pool is full', () => readyIn(runner, 'echo') === 2 && sandboxesOf(process.pid, 'echo').length === 2, 30_000);
    const waiting = sandboxesOf(process.pid, 'echo');
    // Both waiting sandboxes die, every process of them, and a call comes at once: the pool may still offer
    // one (its death not yet noticed); one that dies before reading its call never ran it, so the call runs
    // in another sandbox. (One that dies after reading it is a crash of that call, as without a pool.)
    // A process may already be gone (its parent's death took it): only ESRCH is expected then.
    for (const pid of waiting.flatMap(processTree)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    const out = await runner.run(invocation(echo, { message: 'after a death' }));
    expect(out, JSON.stringify(out)).toMatchObject({ status: 'succeeded', result: { message: 'after a death' } });
    await waitUntil('the pool replaced them', () => readyIn(runner, 'echo') === 2 && sandboxesOf(process.pid, 'echo').every((pid) => !waiting.includes(pid)), 30_000);
  });

  it('a sandbox refuses a second use', async () => {
    const sandbox = await startSandbox({
      name: `twice-${process.pid}`,
      argv: ['/bin/cat'],
      env: { PATH: '/usr/bin:/bin' },
      network: false,
      readOnlyPaths: [],
      maxOutputBytes: 1024,
      limits: { memoryBytes: 64 * 1024 * 1024, cpuMillis: 100, pids: 8 },
    });
    expect((await sandbox.use({ stdin: 'once', timeoutMs: 5000 })).stdout).toBe('once');
    await expect(sandbox.use({ stdin: 'twice', timeoutMs: 5000 })).rejects.toThrow(/already used/);
  });

  it('close() kills every waiting sandbox and removes its cgroup', async () => {
    await waitUntil('the suite\'s pool is full', () => readyIn(runner, 'echo') === 2 && sandboxesOf(process.pid, 'echo').length === 2, 30_000);
    const closing = new LocalSandboxRunner({ pool: { size: 1, tools: { echo: 3 } } });
    closing.warm([echo]);
    // Its sandboxes are told apart from the suite's runner's by being new.
    const others = new Set(sandboxesOf(process.pid, 'echo'));
    await waitUntil('three sandboxes wait', () => readyIn(closing, 'echo') === 3, 60_000);
    const mine = sandboxesOf(process.pid, 'echo').filter((pid) => !others.has(pid));
    expect(mine).toHaveLength(3);
    const trees = mine.flatMap(processTree);
    const cgroups = mine.flatMap(toolgateCgroupsOf);
    await closing.close();
    // Killed processes leave their cgroup as they start exiting; the last of them may need a moment to be gone.
    await waitUntil('no process of them is left', () => trees.every((pid) => !isAlive(pid)), 2000, 10).catch(() => undefined);
    expect(trees.filter(isAlive).map(describeProcess)).toEqual([]);
    expect(cgroups.filter((d) => existsSync(d))).toEqual([]);
  });
});

describe('the sandbox pool through Envoy', () => {
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local', sandboxPool: { size: 0, tools: { echo: 2, sleep: 1 } } });
    jwt = await stack.jwtFor('ops-bot');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const executorPid = (): number => stack.executor?.pid as number;
  const poolStatus = async (): Promise<Record<string, { waiting: number; ready: number }>> =>
    ((await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/readyz`)).json()) as { status: { sandbox_pool: Record<string, { waiting: number; ready: number }> } }).status.sandbox_pool;
  const full = async (): Promise<boolean> => (await poolStatus()).echo?.ready === 2 && (await poolStatus()).sleep?.ready === 1;

  it('runs calls in pre-started sandboxes, one call each, and shows the pool in /readyz and /metrics', async () => {
    await waitUntil('the executor filled its pool', full, 60_000);
    // Only the tools given a size have sandboxes waiting.
    expect(Object.keys(await poolStatus()).sort()).toEqual(['echo', 'sleep']);
    const consumed: number[] = [];
    for (let i = 0; i < 3; i++) {
      await waitUntil('the pool is full again', async () => (await full()) && sandboxesOf(executorPid(), 'echo').length === 2, 30_000);
      const waiting = sandboxesOf(executorPid(), 'echo');
      const res = await stack.call('/v1/tools/echo', { message: `through envoy ${i}` }, { jwt });
      expect(res.status).toBe(200);
      expect(res.json.result).toEqual({ message: `through envoy ${i}`, length: `through envoy ${i}`.length });
      await waitUntil('the taken sandbox is gone', () => waiting.some((pid) => !isAlive(pid)), 2000, 10);
      const gone = waiting.filter((pid) => !isAlive(pid));
      expect(gone).toHaveLength(1);
      consumed.push(gone[0] as number);
    }
    expect(new Set(consumed).size).toBe(3);
    const metrics = await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text();
    expect(metrics).toMatch(/toolgate_executor_sandbox_pool_waiting\{tool="echo",state="(ready|starting)"\} \d/);
  });

  it('a client that goes away: the taken sandbox is killed within 1 s', async () => {
    await waitUntil('a sleep sandbox waits', async () => (await full()) && sandboxesOf(executorPid(), 'sleep').length === 1, 30_000);
    const [taken] = sandboxesOf(executorPid(), 'sleep');
    const controller = new AbortController();
    const pending = fetch(`http://127.0.0.1:${stack.envoyHttpPort}/v1/tools/sleep`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ seconds: 20 }),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    // Taken: its replacement is being started next to it.
    await waitUntil('the call took the waiting sandbox', () => sandboxesOf(executorPid(), 'sleep').length === 2, 10_000);
    const tree = processTree(taken as number);
    const t0 = Date.now();
    controller.abort();
    await pending;
    await waitUntil('the taken sandbox is gone', () => tree.every((pid) => !isAlive(pid)), 2000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('the executor stops cleanly with sandboxes waiting, leaving no process and no cgroup behind', async () => {
    await waitUntil('the pool is full', async () => (await full()) && sandboxesOf(executorPid(), 'echo').length === 2, 30_000);
    const pid = executorPid();
    const sandboxes = [...sandboxesOf(pid, 'echo'), ...sandboxesOf(pid, 'sleep')];
    expect(sandboxes).toHaveLength(3);
    const trees = sandboxes.flatMap(processTree);
    const cgroups = sandboxes.flatMap(toolgateCgroupsOf);
    await stack.executor?.stop();
    expect(await stack.executor?.exited).toBe(0);
    await waitUntil('no process of them is left', () => trees.every((pid) => !isAlive(pid)), 2000, 10).catch(() => undefined);
    expect(trees.filter(isAlive).map(describeProcess)).toEqual([]);
    expect(cgroups.filter((d) => existsSync(d))).toEqual([]);
  });
});
