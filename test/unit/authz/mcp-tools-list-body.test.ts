import { describe, expect, it } from 'vitest';
import { filterToolsListBody } from '../../../src/authz/mcp-lists/tools-list-body.js';
import { insertMcpServers } from '../../../src/gateway/mcp-envoy-config.js';
import { parseMcpServers } from '../../../src/catalog/mcp-servers.js';

const list = { jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'echo', inputSchema: {} }, { name: 'add', inputSchema: {} }, { title: 'no name' }], nextCursor: 'c' } };
const keepEcho = async (names: string[]): Promise<Set<string>> => new Set(names.filter((n) => n === 'echo'));

describe('upstream tools/list filtering', () => {
  it('keeps only the allowed tools of a JSON answer, and the rest of the message as it was', async () => {
    const out = await filterToolsListBody(Buffer.from(JSON.stringify(list)), keepEcho);
    expect(out.kind).toBe('filtered');
    if (out.kind !== 'filtered') return;
    expect(JSON.parse(out.body.toString())).toEqual({ jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'echo', inputSchema: {} }], nextCursor: 'c' } });
    expect(out).toMatchObject({ listed: 3, kept: 1 });
  });

  it('filters the response inside an event stream and leaves notifications alone', async () => {
    const sse = `event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\nid: 9\nevent: message\ndata: ${JSON.stringify(list)}\n\n`;
    const out = await filterToolsListBody(Buffer.from(sse), keepEcho);
    expect(out.kind).toBe('filtered');
    if (out.kind !== 'filtered') return;
    const events = out.body.toString().split('\n\n');
    expect(events[0]).toBe('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}');
    expect(events[1]).toBe(`id: 9\nevent: message\ndata: ${JSON.stringify({ ...list, result: { tools: [{ name: 'echo', inputSchema: {} }], nextCursor: 'c' } })}`);
  });

  it('passes an error response, refuses garbage', async () => {
    expect((await filterToolsListBody(Buffer.from('{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}'), keepEcho)).kind).toBe('error_response');
    expect(await filterToolsListBody(Buffer.from('<html>oops</html>'), keepEcho)).toMatchObject({ kind: 'garbage', reason: 'neither JSON nor an event stream: "<html>oops</html>"' });
    expect(await filterToolsListBody(Buffer.from(''), keepEcho)).toMatchObject({ kind: 'garbage', reason: 'neither JSON nor an event stream: ""' });
    expect(await filterToolsListBody(Buffer.from('event: message\ndata: \n\n'), keepEcho)).toMatchObject({ kind: 'garbage', reason: 'an event stream without a JSON-RPC response' });
    expect(await filterToolsListBody(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{}}'), keepEcho)).toMatchObject({ kind: 'garbage', reason: 'a response without result.tools' });
    expect((await filterToolsListBody(Buffer.from('{"tools":[],"tools":[]}'), keepEcho)).kind).toBe('garbage');
    expect((await filterToolsListBody(Buffer.from([0xff]), keepEcho)).kind).toBe('garbage');
  });
});

describe('upstream MCP servers in the Envoy config', () => {
  it('renders a tools/list route, a GET route and a route for the rest per server, and a cluster', () => {
    const reg = parseMcpServers('apiVersion: toolgate.dev/v1\nkind: McpServers\nservers:\n  - { name: my-kube, url: "https://k.example:8443/x/mcp", timeout_seconds: 20 }\n', 't');
    const out = insertMcpServers('routes:\n  # @mcp-routes here\nclusters:\n  # @mcp-clusters here\n', reg.all());
    expect(out).toContain('  - match: { path: "/mcp/my-kube", headers: [{ name: x-toolgate-mcp-method, string_match: { exact: tools/list } }] }');
    expect(out).toContain('route: { cluster: mcp_my_kube, prefix_rewrite: "/x/mcp", auto_host_rewrite: true, timeout: 0s, idle_timeout: 600s }');
    expect(out).toContain('route: { cluster: mcp_my_kube, prefix_rewrite: "/x/mcp", auto_host_rewrite: true, timeout: 20s, idle_timeout: 30s }');
    expect(out).toContain('context_extensions: { protocol: mcp, mcp_server: "my-kube" }');
    expect(out).toContain('sni: "k.example"');
    expect(insertMcpServers('  # @mcp-routes\n', [])).toBe('  # (no upstream MCP servers registered)\n');
  });
});
