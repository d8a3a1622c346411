import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/**
 * Every call is counted once and recorded once, whichever stage ends it: refused by the authz server, run by
 * the executor, or failed in the tool. A scripted mix of calls through Envoy, then the exact counts on the
 * two services' /metrics and the records in the two hash-chained audit trails.
 */
describe('call accounting: agent_tool_calls_total and the audit trail', () => {
  let stack: Stack;

  beforeAll(async () => {
    // The default catalog with a 1 s timeout on `sleep`, so a call can fail in the tool on purpose.
    const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: { name: string; execution?: { timeout_seconds?: number } }[] };
    for (const t of doc.tools) if (t.name === 'sleep') t.execution = { ...t.execution, timeout_seconds: 1 };
    const catalogPath = join(await mkdtemp(join(tmpdir(), 'toolgate-catalog-')), 'tools.yaml');
    await writeFile(catalogPath, toYaml(doc));
    stack = await startStack({ engine: 'embedded', executor: 'local', catalogPath, audit: true });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** agent_tool_calls_total from one service's /metrics, keyed by its labels. */
  async function toolCalls(port: number): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counts = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^agent_tool_calls_total\{(.*)\} (\d+)$/.exec(line);
      if (!m) continue;
      const labels = Object.fromEntries([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
      counts.set(`${labels.agent_id}|${labels.action}|${labels.resource}|${labels.result}`, Number(m[2]));
    }
    return counts;
  }

  it('counts each call exactly once across the authz server and the executor, and audits each', async () => {
    const opsBot = await stack.jwtFor('ops-bot');
    const intruder = await stack.jwtFor('intruder');
    const statuses: number[] = [];
    const calls: [string, unknown, string][] = [
      ['/v1/tools/echo', { message: 'one' }, opsBot], // allowed
      ['/v1/tools/echo', { message: 'two' }, opsBot], // allowed
      ['/v1/tools/echo', { message: 'three' }, opsBot], // allowed
      ['/v1/tools/echo', { message: 'not you' }, intruder], // denied: not an authorized agent
      ['/v1/tools/k8s_get_deployment', { namespace: 'production', name: 'api' }, opsBot], // denied: production
      ['/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'api', replicas: 11 }, opsBot], // denied: over 10
      ['/v1/tools/sleep', { seconds: 3 }, opsBot], // allowed by policy, fails in the tool (timeout)
    ];
    for (const [path, body, jwt] of calls) statuses.push((await stack.call(path, body, { jwt })).status);
    expect(statuses).toEqual([200, 200, 200, 403, 403, 403, 504]);

    // Authz refusals plus executor outcomes: once per call, never an allowed decision counted twice.
    const authz = await toolCalls(stack.authzHttpPort);
    const executor = await toolCalls(stack.executorOpsPort as number);
    const total = new Map<string, number>();
    for (const m of [authz, executor]) for (const [k, v] of m) total.set(k, (total.get(k) ?? 0) + v);
    expect(Object.fromEntries(total)).toEqual({
      'ops-bot|invoke|echo|allowed': 3,
      'intruder|invoke|echo|denied': 1,
      'ops-bot|get|deployment|denied': 1,
      'ops-bot|scale|deployment|denied': 1,
      'ops-bot|invoke|sleep|error': 1,
    });
    expect([...authz.keys()].some((k) => k.endsWith('|allowed'))).toBe(false);

    // One audit record per call: refusals in the authz trail, calls that ran in the executor's.
    const records = async (path: string): Promise<Record<string, unknown>[]> =>
      (await readFile(path, 'utf8'))
        .split('\n')
        .filter((l) => l)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(async () => (await records(stack.executorAuditPath as string)).length === 4);
    const refused = await records(stack.authzAuditPath as string);
    const ran = await records(stack.executorAuditPath as string);
    expect(refused.map((r) => [r.agent_id, r.tool, r.result_status])).toEqual([
      ['intruder', 'echo', 'denied'],
      ['ops-bot', 'k8s_get_deployment', 'denied'],
      ['ops-bot', 'k8s_scale_deployment', 'denied'],
    ]);
    expect(refused[2]?.reasons).toEqual(['scale is capped at 10 replicas (asked for 11)']);
    expect(ran.map((r) => [r.tool, r.result_status, r.http_status])).toEqual([
      ['echo', 'succeeded', 200],
      ['echo', 'succeeded', 200],
      ['echo', 'succeeded', 200],
      ['sleep', 'timeout', 504],
    ]);
    for (const r of [...refused, ...ran]) expect(r.arguments_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const r of ran) expect(r.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ran[0]?.result_digest).toBeTruthy();
  });

  it('the verify command passes a whole trail and names the one record that was edited or removed', async () => {
    const verify = (path: string): Promise<{ code: number; out: string }> =>
      run(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'audit', 'verify-cli.js'), path]).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
    const trail = stack.executorAuditPath as string;
    expect(await verify(trail)).toEqual({ code: 0, out: 'ok: 4 records, chain intact\n' });
    expect((await verify(stack.authzAuditPath as string)).code).toBe(0);

    const original = await readFile(trail, 'utf8');
    const lines = original.split('\n').filter((l) => l);
    // Someone turns the failed call into a success after the fact.
    const edited = join(stack.dir, 'edited.jsonl');
    await writeFile(edited, [...lines.slice(0, 3), (lines[3] as string).replace('"result_status":"timeout"', '"result_status":"succeeded"'), ''].join('\n'));
    const e = await verify(edited);
    expect(e.code).toBe(1);
    expect(e.out).toContain('record 4 (line 4): its content does not match its hash: the record was edited');
    expect(e.out).toContain('BROKEN: 1 problem(s) in 4 records');

    // Someone removes the second call.
    const removed = join(stack.dir, 'removed.jsonl');
    await writeFile(removed, [lines[0], ...lines.slice(2), ''].join('\n'));
    const r = await verify(removed);
    expect(r.code).toBe(1);
    expect(r.out).toContain('record 3 (line 2): expected record 2 here: records 2..2 were removed');
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
