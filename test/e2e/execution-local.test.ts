import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/**
 * The one-machine default end to end: Envoy -> authz -> executor -> local sandbox runner -> result. What was
 * authorized is what runs, once; a denied call never starts a process.
 */
describe('execution through Envoy with the local sandbox runner', () => {
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local', maxInFlight: 2, executorConfig: { max_in_flight_per_agent: 2 } });
    jwt = await stack.jwtFor('ops-bot');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function executorMetric(name: string): Promise<string> {
    const text = await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('\n');
  }

  it('returns the real result of an allowed call', async () => {
    const res = await stack.call('/v1/tools/echo', { message: 'hello through the gateway' }, { jwt });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'succeeded', tool: 'echo', result: { message: 'hello through the gateway', length: 25 } });
    expect(res.json.call_id).toMatch(/^[0-9a-f]{20}$/);
  });

  it('runs nothing for a denied call', async () => {
    const before = await executorMetric('toolgate_executor_calls_total');
    // An agent that is not in authorized_agents.
    const res = await stack.call('/v1/tools/echo', { message: 'x' }, { jwt: await stack.jwtFor('intruder') });
    expect(res.status).toBe(403);
    expect(await executorMetric('toolgate_executor_calls_total')).toBe(before);
  });

  it('runs an idempotent retry once and replays its result', async () => {
    const key = `retry-${Date.now()}`;
    const first = await stack.call('/v1/tools/echo', { message: 'once' }, { jwt, headers: { 'idempotency-key': key } });
    const second = await stack.call('/v1/tools/echo', { message: 'once' }, { jwt, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.json.call_id).toBe(first.json.call_id);
    expect(second.headers['idempotent-replayed']).toBe('true');
    const conflict = await stack.call('/v1/tools/echo', { message: 'different' }, { jwt, headers: { 'idempotency-key': key } });
    expect(conflict.status).toBe(422);
    expect(conflict.json.error.code).toBe('idempotency_conflict');
  });

  it('answers 429 with Retry-After past the calls-in-flight limit', async () => {
    const slow = [1, 2].map(() => stack.call('/v1/tools/sleep', { seconds: 1.5 }, { jwt }));
    await new Promise((r) => setTimeout(r, 400));
    const third = await stack.call('/v1/tools/echo', { message: 'too many' }, { jwt });
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
  });
});

describe('the executor with the local runner and no bubblewrap', () => {
  it('refuses to start, saying what is missing and how to install it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-no-bwrap-'));
    const config = join(dir, 'executor.yaml');
    await writeFile(join(dir, 'decision.key'), 'k'.repeat(48));
    await writeFile(config, `http: { address: "127.0.0.1:0" }\nops: { address: "127.0.0.1:0" }\nrunner: { kind: local }\ncatalog: ${join(REPO_ROOT, 'src', 'catalog', 'tools.yaml')}\ndecision_key_file: decision.key\n`);
    // A PATH with no bwrap on it (the empty directory); node itself is started by its absolute path.
    const started = run(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'executor', 'main.js'), '--config', config], { env: { PATH: dir }, timeout: 20_000 });
    const failure = await started.then(
      () => undefined,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    expect(failure?.code).toBe(1);
    expect(`${failure?.stdout ?? ''}${failure?.stderr ?? ''}`).toMatch(/executor failed to start.*the local runner needs bubblewrap.*npm run tools bubblewrap/);
  });
});
