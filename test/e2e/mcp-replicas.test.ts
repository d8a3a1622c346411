import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogWithSleepTimeout, mcpJwt, messagesOf, postMcp, waitFor, type McpTarget } from './mcp-scenarios.js';
import { startStack, type Stack } from './stack.js';

/**
 * Three executor replicas behind one Envoy (local sandbox runner). The executor's MCP front end keeps no
 * session state: a notifications/cancelled stops a call only on the replica running it, and a retried
 * request (same session and JSON-RPC id) is recognised only there. Envoy's /mcp routes hash on
 * Mcp-Session-Id (cluster executor_mcp, Maglev), so both land where the call runs; REST keeps round robin.
 * Without the hashing, the round robin sends consecutive requests to different replicas, and each check
 * below repeats over several sessions, so the tests fail.
 */
const SESSIONS = 3;

/** Sandboxes running `tool` under the executor with this pid (bwrap started with TOOL_NAME=<tool>). */
async function sandboxesOf(executorPid: number, tool: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== executorPid) continue;
      if ((await readFile(`/proc/${entry}/cmdline`, 'utf8')).includes(`\0TOOL_NAME\0${tool}\0`)) n++;
    } catch {
      // the process ended while we looked
    }
  }
  return n;
}

describe('MCP with three executor replicas: a session stays on one replica', () => {
  let stack: Stack;
  let t: McpTarget;

  beforeAll(async () => {
    const catalogPath = await catalogWithSleepTimeout(await mkdtemp(join(tmpdir(), 'toolgate-mcp-replicas-')), 60);
    stack = await startStack({ engine: 'embedded', executor: 'local', executorReplicas: 3, catalogPath });
    t = { stack, jwt: await mcpJwt(stack, 'ops-bot'), runner: 'local', python: '', runningSleeps: async () => 0, toolProcesses: async () => 0, sleepTimeoutSeconds: 60 };
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const pids = (): number[] => stack.executors.map((e) => e.process?.pid as number);
  /** Running sleep sandboxes per replica. */
  const sleepsPerReplica = (): Promise<number[]> => Promise.all(pids().map((p) => sandboxesOf(p, 'sleep')));
  const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  /** Tool calls each replica has run (its executor metrics). */
  const callsPerReplica = (): Promise<number[]> =>
    Promise.all(
      stack.executors.map(async (e) => {
        const text = await (await fetch(`http://127.0.0.1:${e.opsPort}/metrics`)).text();
        return text
          .split('\n')
          .filter((l) => l.startsWith('toolgate_executor_calls_total{'))
          .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      }),
    );
  const newSession = async (name: string): Promise<string> => {
    const init = await postMcp(t, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name, version: '1' } } });
    const id = init.headers.get('mcp-session-id');
    await init.text();
    expect(id).toBeTruthy();
    const initialized = await postMcp(t, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': id as string });
    await initialized.text();
    return id as string;
  };

  it('notifications/cancelled, sent as its own POST, stops the call on the replica running it within 2 s', async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const session = await newSession(`cancel-${i}`);
      const requestId = `long-${i}`;
      const call = postMcp(t, { jsonrpc: '2.0', id: requestId, method: 'tools/call', params: { name: 'sleep', arguments: { seconds: 50 } } }, { 'mcp-session-id': session });
      await waitFor(async () => total(await sleepsPerReplica()) === 1, 30_000);
      // The response stream of the call stays open: only the notification can stop it.
      const cancel = await postMcp(t, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'the user pressed stop' } }, { 'mcp-session-id': session });
      await cancel.text();
      expect(cancel.status).toBe(202);
      const tookMs = await waitFor(async () => total(await sleepsPerReplica()) === 0, 2000, 25);
      expect(tookMs).toBeLessThanOrEqual(2000);
      (await call).body?.cancel().catch(() => undefined);
    }
  }, 180_000);

  it('a retried request (same session and JSON-RPC id) runs once and replays its result', async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const session = await newSession(`retry-${i}`);
      const before = total(await callsPerReplica());
      const call = { jsonrpc: '2.0', id: `retry-${i}`, method: 'tools/call', params: { name: 'echo', arguments: { message: `retried ${i}` } } };
      const first = (await messagesOf(await postMcp(t, call, { 'mcp-session-id': session }))).at(-1);
      const second = (await messagesOf(await postMcp(t, call, { 'mcp-session-id': session }))).at(-1);
      const callId = first.result._meta['toolgate.dev/call'].call_id as string;
      expect(second.result._meta['toolgate.dev/call']).toMatchObject({ call_id: callId, replayed: true });
      expect(second.result.structuredContent).toMatchObject({ message: `retried ${i}` });
      expect(total(await callsPerReplica()) - before).toBe(1);
    }
  }, 120_000);

  it('REST calls are still spread over the replicas (round robin)', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const before = await callsPerReplica();
    for (let i = 0; i < 6; i++) expect((await stack.call('/v1/tools/echo', { message: `rest ${i}` }, { jwt })).status).toBe(200);
    const after = await callsPerReplica();
    expect(after.filter((n, i) => n > (before[i] as number)).length).toBeGreaterThan(1);
  }, 120_000);
});
