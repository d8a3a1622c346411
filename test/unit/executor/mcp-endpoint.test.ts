import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExecutor, type RunningExecutor } from '../../../src/executor/app.js';
import { parseExecutorConfig } from '../../../src/executor/config.js';
import type { Runner, ToolInvocation, ToolOutcome } from '../../../src/executor/runners/runner.js';
import { attest } from '../../../src/shared/decision-attestation.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';
import { attestingFetch, type AttestingFetchOptions } from '../../support/attesting-fetch.js';

/**
 * Test double for a runner (the real ones need bubblewrap or a cluster; the e2e tests use them): echo answers,
 * sleep waits for its seconds or its cancellation, k8s_get_secret fails, a sleep of more than 30 s times out.
 * It reports lifecycle events as the local sandbox runner does and records every run and every abort.
 */
class ScriptedRunner implements Runner {
  readonly kind = 'local' as const;
  readonly runs: ToolInvocation[] = [];
  readonly aborted: string[] = [];

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    this.runs.push(inv);
    inv.observe?.({ kind: 'sandbox.started' });
    const a = inv.arguments;
    switch (inv.tool.name) {
      case 'echo':
        return { status: 'succeeded', result: { message: a.message, length: String(a.message).length }, durationMs: 1 };
      case 'k8s_get_secret':
        return { status: 'failed', exitCode: 1, error: 'secrets "db" is forbidden', durationMs: 1 };
      case 'sleep': {
        const seconds = Number(a.seconds);
        if (seconds > 30) return { status: 'timeout', durationMs: 50 };
        const finished = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(true), seconds * 1000);
          inv.signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve(false);
          });
        });
        if (!finished) {
          this.aborted.push(inv.callId);
          return { status: 'cancelled', durationMs: 1 };
        }
        inv.observe?.({ kind: 'sandbox.exited', exitCode: 0, durationMs: seconds * 1000 });
        return { status: 'succeeded', result: { slept: seconds }, durationMs: seconds * 1000 };
      }
      default:
        return { status: 'unavailable', error: 'not scripted' };
    }
  }

  async close(): Promise<void> {}
}

const KEY = Buffer.from('k'.repeat(48));
const VISIBLE = ['echo', 'sleep', 'k8s_get_secret', 'k8s_scale_deployment'];

describe('the executor as an MCP server (/mcp)', () => {
  let executor: RunningExecutor;
  let runner: ScriptedRunner;
  let url: URL;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-mcp-unit-'));
    await writeFile(join(dir, 'decision.key'), KEY);
    const config = parseExecutorConfig(
      JSON.stringify({ http: { address: '127.0.0.1:0' }, ops: { address: '127.0.0.1:0' }, catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), max_in_flight: 3, max_in_flight_per_agent: 3, decision_key_file: 'decision.key' }),
      join(dir, 'executor.yaml'),
    );
    runner = new ScriptedRunner();
    executor = await startExecutor(config, { runner, log: createLogger('test-executor') });
    url = new URL(`http://127.0.0.1:${executor.port}/mcp`);
  });
  afterAll(async () => {
    await executor?.stop();
  });

  async function connect(o: Partial<AttestingFetchOptions> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(url, { fetch: attestingFetch({ key: KEY, visibleTools: VISIBLE, ...o }) });
    const client = new Client({ name: 'unit-test', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  }

  /** One raw JSON-RPC POST with the stand-in's headers (for what the SDK client will not send). */
  async function post(message: Record<string, unknown>, headers: Record<string, string> = {}, o: Partial<AttestingFetchOptions> = {}): Promise<Response> {
    return attestingFetch({ key: KEY, visibleTools: VISIBLE, ...o })(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', ...headers },
      body: JSON.stringify(message),
    });
  }

  async function sessionId(): Promise<string> {
    const res = await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    expect(res.status).toBe(200);
    return res.headers.get('mcp-session-id') as string;
  }

  /** The JSON-RPC messages of an SSE (or JSON) response body, in order. */
  async function messagesOf(res: Response): Promise<Record<string, any>[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const text = await res.text();
    if ((res.headers.get('content-type') ?? '').includes('application/json')) return [JSON.parse(text)];
    return text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)));
  }

  it('initializes with a session id issued to this agent, and lists exactly the visible tools with the catalog\'s schemas and hints', async () => {
    const { client, transport } = await connect({ visibleTools: ['echo', 'k8s_scale_deployment'] });
    expect(transport.sessionId).toMatch(/^s1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(client.getServerVersion()?.name).toBe('toolgate');
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['k8s_scale_deployment', 'echo']);
    const scale = tools[0];
    expect(scale?.inputSchema).toMatchObject({ type: 'object', required: ['namespace', 'name', 'replicas'] });
    expect(scale?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false });
    expect(tools[1]?.outputSchema).toMatchObject({ type: 'object', required: ['message', 'length'] });
    await client.close();
  });

  it('lists no tools when the policy allows none', async () => {
    const { client } = await connect({ visibleTools: [] });
    expect((await client.listTools()).tools).toEqual([]);
    await client.close();
  });

  it('runs a call and answers a CallToolResult with structuredContent and text', async () => {
    const { client } = await connect();
    const before = runner.runs.length;
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello over MCP' } });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ message: 'hello over MCP', length: 14 });
    expect(result.content).toEqual([{ type: 'text', text: JSON.stringify({ message: 'hello over MCP', length: 14 }) }]);
    expect(result._meta?.['toolgate.dev/call']).toMatchObject({ call_id: expect.stringMatching(/^[0-9a-f]{20}$/), status: 'succeeded', replayed: false });
    expect(runner.runs.length).toBe(before + 1);
    expect(runner.runs.at(-1)).toMatchObject({ agentId: 'ops-bot', policyRevision: 'test-rev', arguments: { message: 'hello over MCP' } });
    await client.close();
  });

  it('answers a failing tool with isError and its cause; the session goes on', async () => {
    const { client } = await connect();
    const failed = await client.callTool({ name: 'k8s_get_secret', arguments: { namespace: 'default', name: 'db' } });
    expect(failed.isError).toBe(true);
    expect(failed.content).toEqual([{ type: 'text', text: expect.stringContaining('secrets "db" is forbidden') }]);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'still here' } })).isError).toBeFalsy();
    await client.close();
  });

  it('answers arguments that fail the schema with a tool execution error naming the field, running nothing', async () => {
    const { client } = await connect();
    const before = runner.runs.length;
    const result = await client.callTool({ name: 'echo', arguments: { message: 'x', colour: 'red' } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('/colour is not an allowed argument');
    const missing = await client.callTool({ name: 'sleep', arguments: {} });
    expect(JSON.stringify(missing.content)).toContain('/seconds');
    expect(runner.runs.length).toBe(before);
    await client.close();
  });

  it('answers a timeout as an error result', async () => {
    const { client } = await connect();
    const result = await client.callTool({ name: 'sleep', arguments: { seconds: 45 } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('did not finish within its timeout of 65 s');
    await client.close();
  });

  it('answers an unknown tool with a JSON-RPC error', async () => {
    const { client } = await connect();
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    await client.close();
  });

  it('sends progress notifications in order on the call\'s stream, then the result', async () => {
    const { client } = await connect();
    const seen: Progress[] = [];
    const result = await client.callTool({ name: 'sleep', arguments: { seconds: 0.2 } }, undefined, { onprogress: (p) => seen.push(p) });
    expect(result.structuredContent).toEqual({ slept: 0.2 });
    expect(seen).toEqual([
      { progress: 1, total: 3, message: 'admitted' },
      { progress: 2, total: 3, message: 'sandbox started' },
      { progress: 3, total: 3, message: 'finished: succeeded' },
    ]);
    await client.close();
  });

  it('cancels a call on notifications/cancelled: the run is stopped and recorded as cancelled', async () => {
    const { client } = await connect();
    const controller = new AbortController();
    const before = runner.aborted.length;
    const pending = client.callTool({ name: 'sleep', arguments: { seconds: 20 } }, undefined, { signal: controller.signal });
    await waitFor(() => runner.runs.at(-1)?.tool.name === 'sleep' && !runner.runs.at(-1)?.signal.aborted);
    const started = Date.now();
    controller.abort('the user changed their mind');
    await expect(pending).rejects.toThrow();
    await waitFor(() => runner.aborted.length === before + 1);
    expect(Date.now() - started).toBeLessThan(2000);
    await waitFor(async () => (await metric('toolgate_executor_calls_total{tool="sleep",outcome="cancelled",http_status="499"}')) >= 1);
    // The session survives a cancellation.
    expect((await client.callTool({ name: 'echo', arguments: { message: 'after cancel' } })).isError).toBeFalsy();
    await client.close();
  });

  it('cancels a call when the client closes its stream', async () => {
    const sid = await sessionId();
    const before = runner.aborted.length;
    const controller = new AbortController();
    const res = await attestingFetch({ key: KEY })(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'close-me', method: 'tools/call', params: { name: 'sleep', arguments: { seconds: 20 } } }),
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    await waitFor(() => runner.runs.at(-1)?.tool.name === 'sleep' && !runner.runs.at(-1)?.signal.aborted);
    controller.abort();
    await waitFor(() => runner.aborted.length === before + 1);
  });

  it('runs a retried POST (same session and request id) once: a concurrent retry joins, a later one replays', async () => {
    const sid = await sessionId();
    const call = { jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'sleep', arguments: { seconds: 0.3 } } };
    const before = runner.runs.length;
    const [a, b] = await Promise.all([post(call, { 'mcp-session-id': sid }), post(call, { 'mcp-session-id': sid })]);
    const [ma, mb] = [await messagesOf(a), await messagesOf(b)];
    const c = await messagesOf(await post(call, { 'mcp-session-id': sid }));
    expect(runner.runs.length).toBe(before + 1);
    for (const m of [ma, mb, c]) expect(m.at(-1)?.result.structuredContent).toEqual({ slept: 0.3 });
    const ids = [ma, mb, c].map((m) => m.at(-1)?.result._meta['toolgate.dev/call'].call_id);
    expect(new Set(ids).size).toBe(1);
    expect(c.at(-1)?.result._meta['toolgate.dev/call'].replayed).toBe(true);
    // The same id in another session is another call.
    await messagesOf(await post(call, { 'mcp-session-id': await sessionId() }));
    expect(runner.runs.length).toBe(before + 2);
    // The same id with other arguments is a conflict, not a replay.
    const conflict = await messagesOf(await post({ ...call, params: { name: 'sleep', arguments: { seconds: 0.4 } } }, { 'mcp-session-id': sid }));
    expect(conflict.at(-1)?.error).toMatchObject({ code: -32009 });
  });

  it('runs a call with the same Idempotency-Key once, across sessions', async () => {
    const before = runner.runs.length;
    const key = `idem-${Date.now()}`;
    const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'once' } } });
    const first = await messagesOf(await post(call(1), { 'mcp-session-id': await sessionId(), 'idempotency-key': key }));
    const second = await messagesOf(await post(call(9), { 'mcp-session-id': await sessionId(), 'idempotency-key': key }));
    expect(runner.runs.length).toBe(before + 1);
    expect(second.at(-1)?.result._meta['toolgate.dev/call']).toMatchObject({ call_id: first.at(-1)?.result._meta['toolgate.dev/call'].call_id, replayed: true });
  });

  it('answers backpressure with a JSON-RPC error that says when to retry', async () => {
    const { client } = await connect();
    const slow = [1, 2, 3].map(() => client.callTool({ name: 'sleep', arguments: { seconds: 0.6 } }));
    await waitFor(async () => (await metric('toolgate_executor_calls_in_flight')) >= 0 && runner.runs.filter((r) => r.tool.name === 'sleep' && !r.signal.aborted).length >= 3);
    const err = await client.callTool({ name: 'echo', arguments: { message: 'one too many' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err).toMatchObject({ code: -32029, data: { code: 'too_many_calls', retry_after_seconds: 1 } });
    expect((await Promise.all(slow)).every((r) => !r.isError)).toBe(true);
    await client.close();
  });

  describe('refuses what the gateway did not attest', () => {
    const refusedCode = async (res: Response): Promise<number | undefined> => {
      expect(res.status).toBe(200);
      return ((await res.json()) as { error?: { code: number } }).error?.code;
    };
    const call = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } };

    it('no decision headers at all: 403', async () => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(call) });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32003);
    });

    it('an attestation made with another key', async () => {
      const res = await post(call, {}, { key: Buffer.from('x'.repeat(48)) });
      // A request with an id: HTTP 200 and a JSON-RPC error for it, as the authz server refuses.
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: 5, error: { code: -32003 } });
    });

    it('arguments other than the attested ones', async () => {
      const before = runner.runs.length;
      const res = await post(call, {}, {
        tamper: (h) => {
          const decisionId = h['x-toolgate-decision-id'] as string;
          h['x-toolgate-attestation'] = attest(KEY, { decisionId, agentId: 'ops-bot', agentMethod: 'jwt', tool: 'echo', policyRevision: 'test-rev', scope: 'mcp:tools/call', body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'something else' } } })) });
        },
      });
      expect(await refusedCode(res)).toBe(-32003);
      expect(runner.runs.length).toBe(before);
    });

    it('a decided method that is not the message\'s, a tool header that is not params.name, a REST attestation', async () => {
      expect(await refusedCode(await post(call, {}, { tamper: (h) => (h['x-toolgate-mcp-method'] = 'tools/list') }))).toBe(-32003);
      expect(await refusedCode(await post(call, {}, { tamper: (h) => (h['x-toolgate-tool'] = 'sleep') }))).toBe(-32003);
      const rest = await post(call, {}, {
        // The same bytes, attested for REST: the scope differs.
        tamper: (h, m) => {
          const decisionId = h['x-toolgate-decision-id'] as string;
          h['x-toolgate-attestation'] = attest(KEY, { decisionId, agentId: 'ops-bot', agentMethod: 'jwt', tool: 'echo', policyRevision: 'test-rev', body: Buffer.from(JSON.stringify(m)) });
        },
      });
      expect(await refusedCode(rest)).toBe(-32003);
    });

    it('a visible-tools header other than the attested one', async () => {
      const res = await post({ jsonrpc: '2.0', id: 6, method: 'tools/list' }, {}, { visibleTools: ['echo'], tamper: (h) => (h['x-toolgate-visible-tools'] = 'echo,k8s_get_secret') });
      expect(await refusedCode(res)).toBe(-32003);
    });

    it('a session id not issued to this agent: 404, as an unknown session', async () => {
      const sid = await sessionId();
      expect((await post(call, { 'mcp-session-id': sid }, { agentId: 'other-bot' })).status).toBe(404);
      expect((await post(call, { 'mcp-session-id': 's1.made-up.AAAAAAAAAAAAAAAAAAAAAA' })).status).toBe(404);
    });

    it('batches: 400', async () => {
      const res = await post([call] as unknown as Record<string, unknown>);
      expect(res.status).toBe(400);
    });
  });

  it('refuses a web origin that is not this machine\'s loopback nor configured (DNS rebinding), before anything else', async () => {
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'web', version: '1' } } };
    expect((await post(init, { origin: 'http://evil.example.com' })).status).toBe(403);
    // fetch sets Host to 127.0.0.1:<port>: a loopback page talking to a loopback gateway is served.
    expect((await post(init, { origin: `http://localhost:${executor.port}` })).status).toBe(200);
    // No Origin at all (every agent that is not a browser): served.
    expect((await post(init)).status).toBe(200);
  });

  it('answers GET and DELETE with 405 (no server stream, no session state)', async () => {
    const f = attestingFetch({ key: KEY });
    expect((await f(url, { method: 'GET', headers: { accept: 'text/event-stream' } })).status).toBe(405);
    expect((await f(url, { method: 'DELETE' })).status).toBe(405);
    // The SDK client accepts both answers: it closes cleanly.
    const { client, transport } = await connect();
    await transport.terminateSession();
    await client.close();
  });

  async function metric(series: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${executor.opsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(series));
    return line ? Number(line.slice(series.length).trim()) : 0;
  }
});

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
