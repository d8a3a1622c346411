import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import type { Stack } from './stack.js';

/**
 * The MCP scenarios of issue 14, run through the real Envoy and authz server against the executor's /mcp with
 * the official TypeScript SDK client and the Python `mcp` client, once per runner (mcp-local.test.ts,
 * mcp-kubernetes.test.ts): list, call, a refused call (the session goes on), arguments failing the schema (a tool
 * execution error), progress in order, cancel (the
 * tool's process, or Job, gone within 2 s and the call recorded as cancelled), timeout, 20 concurrent calls,
 * a retried request running once.
 */
export interface McpTarget {
  stack: Stack;
  jwt: string;
  runner: 'local' | 'kubernetes';
  /** The venv python with the `mcp` package. */
  python: string;
  /** The sleep tool's runs still alive: sandbox processes, or Jobs not finished nor deleted. */
  runningSleeps(): Promise<number>;
  /** Kubernetes: the tool processes of the node stand-in still running (0 for the local runner). */
  toolProcesses(): Promise<number>;
  /** The sleep tool's timeout in this target's catalog, seconds. */
  sleepTimeoutSeconds: number;
}

/**
 * The default catalog with a short sleep timeout (the timeout scenario waits for it) and, optionally, a longer
 * echo timeout (a Job's deadline includes its pod's start-up, and 20 pods start together in one scenario).
 */
export async function catalogWithSleepTimeout(dir: string, seconds: number, echoSeconds?: number): Promise<string> {
  const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: { name: string; execution: { timeout_seconds: number } }[] };
  for (const t of doc.tools) {
    if (t.name === 'sleep') t.execution.timeout_seconds = seconds;
    if (t.name === 'echo' && echoSeconds !== undefined) t.execution.timeout_seconds = echoSeconds;
  }
  const path = join(dir, 'catalog-mcp.yaml');
  await writeFile(path, toYaml(doc));
  return path;
}

export function mcpUrl(stack: Stack): URL {
  return new URL(`http://127.0.0.1:${stack.envoyHttpPort}/mcp`);
}

/** A token for the gateway's MCP resource: its audience is the /mcp URL (RFC 8707), not the REST audience. */
export function mcpJwt(stack: Stack, sub: string): Promise<string> {
  return stack.jwtFor(sub, { aud: mcpUrl(stack).href });
}

export async function connectTs(t: McpTarget, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(mcpUrl(t.stack), { requestInit: { headers: { authorization: `Bearer ${t.jwt}`, ...headers } } });
  const client = new Client({ name: 'toolgate-e2e-ts', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

interface AuditRecord {
  call_id: string;
  tool: string;
  result_status: string;
}

export async function auditRecords(t: McpTarget): Promise<AuditRecord[]> {
  const text = await readFile(t.stack.executorAuditPath as string, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** Runs one scenario of the Python client; `onEvent` sees its progress markers as they come. */
export function runPython(t: McpTarget, scenario: string, onEvent: (e: Record<string, unknown>) => void = () => undefined): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const child = spawn(t.python, [join(REPO_ROOT, 'test', 'support', 'mcp', 'python_client.py'), mcpUrl(t.stack).href, t.jwt, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let result: unknown;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('result' in msg) result = msg.result;
        else onEvent(msg);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`python client (${scenario}) exited with ${code}: ${err.slice(-2000)}`))));
  });
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** One raw JSON-RPC POST through Envoy as the agent (for what an SDK client does not do: resend a request). */
export async function postMcp(t: McpTarget, message: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(mcpUrl(t.stack), {
    method: 'POST',
    headers: { authorization: `Bearer ${t.jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', ...headers },
    body: JSON.stringify(message),
  });
}

/** The JSON-RPC messages of a JSON or SSE response, in order. */
export async function messagesOf(res: Response): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('application/json')) return [JSON.parse(text)];
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)));
}

/** Registers the scenarios for a target made in the caller's beforeAll. */
export function mcpScenarios(target: () => McpTarget): void {
  const firstStep = (t: McpTarget): RegExp => (t.runner === 'kubernetes' ? /^Job .+ created$/ : /^sandbox started$/);

  it('TypeScript SDK: lists the tools the policy lets the agent call, with the catalog\'s schemas and hints', async () => {
    const t = target();
    const client = await connectTs(t);
    const { tools } = await client.listTools();
    const names = tools.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'sleep']));
    const echo = tools.find((x) => x.name === 'echo');
    expect(echo?.inputSchema).toMatchObject({ type: 'object', required: ['message'] });
    expect(echo?.annotations).toMatchObject({ readOnlyHint: true });
    // An agent the policy does not know sees nothing it could call.
    const stranger = await connectTs({ ...t, jwt: await mcpJwt(t.stack, 'intruder') }).catch((e: unknown) => e);
    if (stranger instanceof Client) {
      expect((await stranger.listTools()).tools).toEqual([]);
      await stranger.close();
    }
    await client.close();
  });

  it('Python SDK: lists the tools with the catalog\'s schemas and hints', async () => {
    const tools = (await runPython(target(), 'list')) as { name: string; inputSchema: { required: string[] }; annotations: { readOnlyHint?: boolean } | null }[];
    const echo = tools.find((x) => x.name === 'echo');
    expect(echo?.inputSchema.required).toEqual(['message']);
    expect(echo?.annotations?.readOnlyHint).toBe(true);
  });

  it('both SDKs: a call returns structuredContent and text', async () => {
    const t = target();
    const client = await connectTs(t);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'hello from typescript' } });
    expect(r.structuredContent).toEqual({ message: 'hello from typescript', length: 21 });
    expect(r.content).toEqual([{ type: 'text', text: JSON.stringify({ message: 'hello from typescript', length: 21 }) }]);
    await client.close();
    const py = await runPython(t, 'call');
    expect(py).toMatchObject({ isError: false, structured: { message: 'hello from python', length: 17 }, call: { status: 'succeeded', replayed: false } });
  });

  it('both SDKs: a refused call is a JSON-RPC error with the policy\'s reasons, and the session goes on', async () => {
    const t = target();
    const client = await connectTs(t);
    const err = await client.callTool({ name: 'k8s_get_secret', arguments: { namespace: 'default', name: 'db' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).message).toMatch(/secret/i);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'still here' } })).structuredContent).toMatchObject({ message: 'still here' });
    await client.close();
    const py = await runPython(t, 'refused');
    expect(py.refused.message).toMatch(/secret/i);
    expect(py.after).toMatchObject({ message: 'still here' });
  });

  it('both SDKs: arguments that fail the schema are a tool execution error naming the field, and the session goes on', async () => {
    const t = target();
    const client = await connectTs(t);
    // Refused by the authz server before the executor sees it, answered as MCP says (a result, not an error).
    const r = await client.callTool({ name: 'echo', arguments: { message: 'x', colour: 'red' } });
    expect(r.isError).toBe(true);
    expect(r.content).toEqual([{ type: 'text', text: 'invalid arguments for tool "echo": /colour is not an allowed argument' }]);
    expect(r._meta?.['toolgate.dev/call']).toMatchObject({ status: 'invalid_arguments', fields: [{ path: '/colour', message: 'is not an allowed argument' }], decision_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect((await client.callTool({ name: 'echo', arguments: { message: 'still here' } })).structuredContent).toMatchObject({ message: 'still here' });
    await client.close();
    const py = await runPython(t, 'invalid');
    expect(py.invalid).toMatchObject({ isError: true, text: 'invalid arguments for tool "echo": /colour is not an allowed argument', call: { status: 'invalid_arguments', fields: [{ path: '/colour', message: 'is not an allowed argument' }] } });
    expect(py.after).toMatchObject({ message: 'still here' });
  });

  it('both SDKs: progress notifications follow the call\'s lifecycle in order, then the result', async () => {
    const t = target();
    const client = await connectTs(t);
    const seen: Progress[] = [];
    const r = await client.callTool({ name: 'sleep', arguments: { seconds: 1 } }, undefined, { onprogress: (p) => seen.push(p) });
    expect(r.structuredContent).toEqual({ slept: 1 });
    await client.close();
    const py = await runPython(t, 'progress');
    expect(py.structured).toEqual({ slept: 1 });
    for (const steps of [seen, py.progress as Progress[]]) {
      expect(steps[0]).toMatchObject({ progress: 1, message: 'admitted' });
      expect(steps.at(-1)).toMatchObject({ message: 'finished: succeeded' });
      expect(steps.at(-1)?.progress).toBe(steps.at(-1)?.total);
      expect(steps.map((s) => s.message)).toContainEqual(expect.stringMatching(firstStep(t)));
      for (let i = 1; i < steps.length; i++) expect(steps[i]?.progress).toBeGreaterThan(steps[i - 1]?.progress as number);
    }
  });

  it('TypeScript SDK: cancelling stops the run within 2 s, records it, and the session goes on', async () => {
    const t = target();
    const client = await connectTs(t);
    const cancelledBefore = (await auditRecords(t)).filter((r) => r.tool === 'sleep' && r.result_status === 'cancelled').length;
    // The earlier tests' sleep calls have answered, but on the real node their Jobs are marked Complete a
    // few seconds later: counted as running, they would stand in for this call's Job (seen, then "still
    // running" after the cancel). Start from none, so what is measured is this call's Job.
    await waitFor(async () => (await t.runningSleeps()) === 0, 60_000);
    const controller = new AbortController();
    const pending = client.callTool({ name: 'sleep', arguments: { seconds: 20 } }, undefined, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(async () => (await t.runningSleeps()) > 0, 60_000);
    controller.abort('the user changed their mind');
    const took = await waitFor(async () => (await t.runningSleeps()) === 0, 10_000);
    expect(took).toBeLessThan(2000);
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(async () => (await t.toolProcesses()) === 0, 15_000);
    await waitFor(async () => (await auditRecords(t)).filter((r) => r.tool === 'sleep' && r.result_status === 'cancelled').length === cancelledBefore + 1, 10_000);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'after cancel' } })).structuredContent).toMatchObject({ message: 'after cancel' });
    await client.close();
  });

  it('Python SDK: cancelling stops the run within 2 s, records it, and the session goes on', async () => {
    const t = target();
    const cancelledBefore = (await auditRecords(t)).filter((r) => r.tool === 'sleep' && r.result_status === 'cancelled').length;
    await waitFor(async () => (await t.runningSleeps()) === 0, 60_000);
    let cancelledAt = 0;
    let goneAfterMs: Promise<number> | undefined;
    const py = await runPython(t, 'cancel', (e) => {
      if (e.event !== 'cancelling') return;
      cancelledAt = Date.now();
      goneAfterMs = waitFor(async () => (await t.runningSleeps()) === 0, 10_000);
    });
    expect(cancelledAt).toBeGreaterThan(0);
    expect(await goneAfterMs).toBeLessThan(2000);
    expect(py).toMatchObject({ cancelled: true, after: { message: 'after cancel' } });
    await waitFor(async () => (await t.toolProcesses()) === 0, 15_000);
    await waitFor(async () => (await auditRecords(t)).filter((r) => r.tool === 'sleep' && r.result_status === 'cancelled').length === cancelledBefore + 1, 10_000);
  });

  it('both SDKs: a call that outlives its timeout is an error result, and nothing of it is left running', async () => {
    const t = target();
    const client = await connectTs(t);
    const r = await client.callTool({ name: 'sleep', arguments: { seconds: 30 } });
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r.content)).toContain(`did not finish within its timeout of ${t.sleepTimeoutSeconds} s`);
    await waitFor(async () => (await t.runningSleeps()) === 0, 15_000);
    await client.close();
    const py = await runPython(t, 'timeout');
    expect(py).toMatchObject({ isError: true, call: { status: 'timeout' } });
    await waitFor(async () => (await t.runningSleeps()) === 0, 15_000);
    await waitFor(async () => (await t.toolProcesses()) === 0, 15_000);
  }, 120_000);

  it('both SDKs: 20 concurrent calls each run once and answer', async () => {
    const t = target();
    const client = await connectTs(t);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'echo', arguments: { message: `concurrent ${i}` } })));
    expect(results.filter((r) => r.isError).map((r) => JSON.stringify(r.content))).toEqual([]);
    expect(results.map((r) => (r.structuredContent as { message: string }).message)).toEqual(Array.from({ length: 20 }, (_, i) => `concurrent ${i}`));
    const ids = results.map((r) => (r._meta?.['toolgate.dev/call'] as { call_id: string }).call_id);
    expect(new Set(ids).size).toBe(20);
    await client.close();
    const py = (await runPython(t, 'concurrent')) as { isError: boolean; structured: { message: string } | null; text: string; call_id: string }[];
    expect(py.filter((r) => r.isError).map((r) => r.text)).toEqual([]);
    expect(py.map((r) => r.structured?.message)).toEqual(Array.from({ length: 20 }, (_, i) => `concurrent ${i}`));
    expect(new Set(py.map((r) => r.call_id)).size).toBe(20);
  }, 180_000);

  it('a retried POST (same session and request id) runs once and replays; so does an Idempotency-Key (Python SDK)', async () => {
    const t = target();
    const init = await postMcp(t, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-retry', version: '1' } } });
    const sessionId = init.headers.get('mcp-session-id') as string;
    expect(sessionId).toBeTruthy();
    await init.text();
    const call = { jsonrpc: '2.0', id: 'retry-1', method: 'tools/call', params: { name: 'echo', arguments: { message: 'retried' } } };
    const first = (await messagesOf(await postMcp(t, call, { 'mcp-session-id': sessionId }))).at(-1);
    const second = (await messagesOf(await postMcp(t, call, { 'mcp-session-id': sessionId }))).at(-1);
    const callId = first.result._meta['toolgate.dev/call'].call_id as string;
    expect(second.result._meta['toolgate.dev/call']).toMatchObject({ call_id: callId, replayed: true });
    expect(second.result.structuredContent).toEqual(first.result.structuredContent);
    await waitFor(async () => (await auditRecords(t)).some((r) => r.call_id === callId), 5000);
    expect((await auditRecords(t)).filter((r) => r.call_id === callId)).toHaveLength(1);

    const py = await runPython(t, 'idempotent');
    expect(py.second).toMatchObject({ call_id: py.first.call_id, replayed: true });
    expect((await auditRecords(t)).filter((r) => r.call_id === py.first.call_id)).toHaveLength(1);
  });
}
