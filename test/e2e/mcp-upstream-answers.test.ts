import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { startGarbageMcpUpstream } from '../support/garbage-mcp-upstream.js';
import { freePort } from '../support/managed-process.js';
import { startHangingUpstream } from '../support/mcp-upstreams.js';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';
import { jsonRpcError } from '../support/mcp-errors.js';

/**
 * An upstream MCP server that answers garbage to a request (not JSON, not JSON-RPC, another id's response, an
 * HTML page, a 500 in plain text, a 202): through the real Envoy, the client gets a JSON-RPC error for its
 * request naming the server and what was wrong (the authz server's ext_proc answer check), and the session
 * goes on. Good answers, the upstream's own JSON-RPC errors, and a down or hung upstream are as before.
 */
describe('MCP: an upstream that answers garbage', () => {
  let stack: Stack;
  let jwt: string;
  const closers: (() => Promise<void>)[] = [];
  const url = (server: string): URL => new URL(`http://127.0.0.1:${stack.envoyHttpPort}/mcp/${server}`);
  const rpc = (server: string, body: unknown) => stack.call(`/mcp/${server}`, body, { jwt, headers: { accept: 'application/json, text/event-stream' } });

  async function connect(server: string): Promise<Client> {
    const client = new Client({ name: 'toolgate-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url(server), { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
    closers.push(() => client.close());
    return client;
  }

  const mcpError = jsonRpcError;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-mcp-answers-'));
    const [garbage, hang] = await Promise.all([startGarbageMcpUpstream(), startHangingUpstream()]);
    closers.push(garbage.close, hang.close);
    const registry = {
      apiVersion: 'toolgate.dev/v1',
      kind: 'McpServers',
      servers: [
        { name: 'garbage', url: garbage.url, timeout_seconds: 10, tools: { echo: { action: 'invoke', resource: 'echo' } } },
        { name: 'down', url: `http://127.0.0.1:${await freePort()}/mcp`, timeout_seconds: 5, connect_timeout_seconds: 1 },
        { name: 'hang', url: hang.url, timeout_seconds: 2 },
      ],
    };
    const policies = await policiesWithData(dir, 'mcp-policies', { authorized_agents: ['ops-bot'] });
    // e2e: resources may be read by authorized agents (the seed decides tools only).
    await writeFile(join(policies, 'agent', 'authz', 'e2e_resources.rego'), 'package agent.authz\n\nimport rego.v1\n\nallow if {\n\tinput.mcp.method == "resources/read"\n\tinput.agent_id in data.authorized_agents\n}\n');
    const bundle = await buildSeedBundle(dir, 'mcp-answers', policies);
    const registryPath = join(dir, 'mcp-servers.yaml');
    await writeFile(registryPath, toYaml(registry));
    stack = await startStack({ engine: 'embedded', bundle: { file: bundle }, mcpServersPath: registryPath });
    jwt = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
  }, 240_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    await stack?.stop();
  });

  const garbageAnswers: [string, RegExp][] = [
    ['html', /answered HTTP 200 text\/html, not a JSON-RPC response/],
    ['not-json', /answered application\/json that is not JSON/],
    ['not-jsonrpc', /answered JSON that is not a JSON-RPC 2\.0 message/],
    ['wrong-id', /answered the response for id \d+, not for id \d+/],
    ['empty', /answered application\/json with an empty body/],
    ['server-error-text', /answered HTTP 500 text\/plain, not a JSON-RPC response/],
    ['batch', /answered a JSON array \(a batch\)/],
    ['accepted', /answered HTTP 202 \(accepted, no response\) to a request/],
  ];

  it('TypeScript SDK: each kind of garbage to tools/call and resources/read is a JSON-RPC error naming the server and what was wrong; the session goes on', async () => {
    const client = await connect('garbage');
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    for (const [kind, why] of garbageAnswers) {
      const call = await mcpError(client.callTool({ name: 'echo', arguments: { answer: kind } }));
      expect(call.code, kind).toBe(-32603);
      expect(call.message, kind).toContain('upstream MCP server "garbage" ');
      expect(call.message, kind).toMatch(why);
      expect(call.data, kind).toMatchObject({ code: 'upstream_bad_answer' });
      const read = await mcpError(client.readResource({ uri: `test://resource/${kind}` }));
      expect(read.message, kind).toMatch(why);
      // The same session, the next good call.
      expect((await client.callTool({ name: 'echo', arguments: { answer: 'good' } })).content, kind).toEqual([{ type: 'text', text: 'good answer' }]);
    }
    expect((await client.callTool({ name: 'echo', arguments: { answer: 'stream' } })).content).toEqual([{ type: 'text', text: 'good answer' }]);
    expect((await client.readResource({ uri: 'test://resource/good' })).contents).toEqual([{ uri: 'test://resource/good', text: 'good resource' }]);
    // The upstream's own JSON-RPC error passes as it came.
    const own = await mcpError(client.callTool({ name: 'echo', arguments: { answer: 'rpc-error' } }));
    expect(own.code).toBe(-32000);
    expect(own.message).toContain('the upstream says no');
  }, 120_000);

  it('an event stream that ends without the response is streamed untouched: the SDK reports it (its request timeout), the session goes on', async () => {
    const client = await connect('garbage');
    const started = Date.now();
    const err = await mcpError(client.callTool({ name: 'echo', arguments: { answer: 'stream-without-response' } }, undefined, { timeout: 3000 }));
    expect(err.code).toBe(-32001);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await client.callTool({ name: 'echo', arguments: { answer: 'stream' } })).content).toEqual([{ type: 'text', text: 'good answer' }]);
  }, 60_000);

  it('raw HTTP: garbage to a request is HTTP 200 with a JSON-RPC error for its id; to a notification a 502 with id null', async () => {
    const html = await rpc('garbage', { jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'echo', arguments: { answer: 'html' } } });
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toBe('application/json');
    expect(html.json).toMatchObject({ jsonrpc: '2.0', id: 'call-1', error: { code: -32603, data: { code: 'upstream_bad_answer', details: { server: 'garbage' } } } });
    expect(html.json.error.message).toBe('upstream MCP server "garbage" answered HTTP 200 text/html, not a JSON-RPC response');
    expect(html.json.error.data.decision_id).toMatch(/^[0-9a-f-]{36}$/);

    const other = await rpc('garbage', { jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'echo', arguments: { answer: 'wrong-id' } } });
    expect(other.json).toMatchObject({ id: 41, error: { code: -32603 } });
    expect(other.json.error.message).toBe('upstream MCP server "garbage" answered the response for id 1041, not for id 41');

    const good = await rpc('garbage', { jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'echo', arguments: { answer: 'good' } } });
    expect(good.status).toBe(200);
    expect(good.json).toEqual({ jsonrpc: '2.0', id: 42, result: { content: [{ type: 'text', text: 'good answer' }] } });

    const note = await rpc('garbage', { jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    expect(note.status).toBe(502);
    expect(note.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32603, data: { code: 'upstream_bad_answer' } } });
    expect(note.json.error.message).toBe('upstream MCP server "garbage" answered HTTP 500 text/plain');
    const fine = await rpc('garbage', { jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(fine.status).toBe(202);
  }, 60_000);

  it('an upstream that is down or hangs keeps its answers (the local reply is not mistaken for garbage)', async () => {
    const call = { jsonrpc: '2.0', id: 7, method: 'ping' };
    const down = await rpc('down', call);
    expect(down.status).toBe(200);
    expect(down.json).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32603, data: { code: 'upstream_unavailable' } } });
    const started = Date.now();
    const hung = await rpc('hang', call);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(hung.json).toMatchObject({ id: 7, error: { code: -32603, data: { code: 'upstream_unavailable' } } });
  }, 60_000);

  it('an answer that cannot be checked (the authz server gone while the upstream answers) is a JSON-RPC error, never passed on unchecked', async () => {
    const pending = rpc('garbage', { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo', arguments: { answer: 'slow' } } });
    await new Promise((r) => setTimeout(r, 500));
    await stack.stopAuthz();
    try {
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ jsonrpc: '2.0', id: 9, error: { code: -32603, data: { code: 'answer_unchecked' } } });
      expect(JSON.stringify(res.json)).toMatch(/MCP server garbage could not be checked/);
      expect(JSON.stringify(res.json)).not.toMatch(/good answer/);
    } finally {
      await stack.restartAuthz();
    }
  }, 60_000);
});
