import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CheckRequest } from '../../../src/authz/grpc/check-types.js';
import { jsonToStruct } from '../../../src/authz/grpc/struct.js';
import { DEFAULT_IDENTITY_OPTIONS } from '../../../src/authz/input/agent-identity.js';
import { mapCheckRequest } from '../../../src/authz/input/build-input.js';
import { McpRejection } from '../../../src/authz/input/mcp-rejection.js';
import { parseMcpServers, type McpServerRegistry } from '../../../src/catalog/mcp-servers.js';
import { loadToolCatalogFile, type ToolCatalog } from '../../../src/catalog/tool-catalog.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

let catalog: ToolCatalog;
const servers: McpServerRegistry = parseMcpServers(
  `apiVersion: toolgate.dev/v1
kind: McpServers
servers:
  - name: kubernetes
    url: http://127.0.0.1:8089/mcp
    tools:
      pods_delete: { action: delete, resource: pod, namespace: { from: /namespace }, fields: { name: { from: /name } } }
`,
  'test',
);
beforeAll(async () => {
  catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
});

function mcpRequest(opts: { body?: unknown; raw?: string; method?: string; headers?: Record<string, string>; server?: string; jwt?: Record<string, unknown> | null }): CheckRequest {
  const body = opts.raw ?? (opts.body === undefined ? '' : JSON.stringify(opts.body));
  const jwt = opts.jwt === null ? undefined : (opts.jwt ?? { sub: 'ops-bot' });
  return {
    attributes: {
      request: {
        http: {
          id: 'req-1',
          method: opts.method ?? 'POST',
          headers: { ':authority': 'gw', 'content-type': 'application/json', ...opts.headers },
          path: opts.server ? `/mcp/${opts.server}` : '/mcp',
          raw_body: Buffer.from(body),
        },
      },
      context_extensions: { protocol: 'mcp', mcp_server: opts.server ?? 'toolgate' },
      ...(jwt ? { metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': jsonToStruct({ jwt_payload: jwt }) } } } : {}),
    },
  };
}

const map = (req: CheckRequest) => mapCheckRequest(req, { catalog, identity: DEFAULT_IDENTITY_OPTIONS, servers });

function refusal(fn: () => unknown): McpRejection {
  try {
    fn();
  } catch (err) {
    if (err instanceof McpRejection) return err;
    throw err;
  }
  throw new Error('expected an MCP refusal');
}

const call = (name: string, args: unknown, id: number | string = 7) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('MCP message -> OPA input', () => {
  it('makes every message input.mcp (initialize carries its protocol version)', () => {
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } };
    const { input, mcp, toolCall } = map(mcpRequest({ body: init }));
    expect(input.mcp).toEqual({ method: 'initialize', server: 'toolgate', id: 0, params: init.params, protocol_version: '2025-06-18' });
    expect(input.parsed_body).toEqual(init);
    expect(mcp?.kind).toBe('request');
    expect(toolCall).toBeUndefined();
    expect(input.tool_call).toBeUndefined();
    const listed = map(mcpRequest({ body: { jsonrpc: '2.0', id: 'a', method: 'tools/list' }, headers: { 'mcp-session-id': 's-1', 'mcp-protocol-version': '2025-11-25' } }));
    expect(listed.input.mcp).toEqual({ method: 'tools/list', server: 'toolgate', id: 'a', session_id: 's-1', protocol_version: '2025-11-25' });
  });

  it('maps a tools/call to the catalog tool, its validated arguments and flat fields, exactly as REST', () => {
    const { input, toolCall } = map(mcpRequest({ body: call('k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 3 }) }));
    expect(toolCall).toEqual({ protocol: 'mcp', server: 'toolgate', tool: 'k8s_scale_deployment', arguments: { namespace: 'production', name: 'api', replicas: 3 } });
    expect(input).toMatchObject({ agent_id: 'ops-bot', action: 'scale', resource: 'deployment', namespace: 'production', desired_replicas: 3, name: 'api' });
    expect((input.mcp as Record<string, unknown>).method).toBe('tools/call');
  });

  it('maps an upstream tool through the registry, and leaves unmapped tools without flat fields', () => {
    const del = map(mcpRequest({ server: 'kubernetes', body: call('pods_delete', { namespace: 'production', name: 'web-0' }) }));
    expect(del.toolCall).toEqual({ protocol: 'mcp', server: 'kubernetes', tool: 'pods_delete', arguments: { namespace: 'production', name: 'web-0' } });
    expect(del.input).toMatchObject({ action: 'delete', resource: 'pod', namespace: 'production', name: 'web-0' });
    const other = map(mcpRequest({ server: 'kubernetes', body: call('events_list', {}) }));
    expect(other.input.action).toBeUndefined();
  });

  it('decides notifications, client responses, GET and DELETE as messages of their own', () => {
    expect(map(mcpRequest({ body: { jsonrpc: '2.0', method: 'notifications/initialized' } })).mcp).toMatchObject({ kind: 'notification', method: 'notifications/initialized', id: undefined });
    expect(map(mcpRequest({ body: { jsonrpc: '2.0', id: 3, result: {} } })).mcp).toMatchObject({ kind: 'response', method: 'response', id: 3 });
    expect(map(mcpRequest({ method: 'GET' })).input.mcp).toEqual({ method: 'GET', server: 'toolgate' });
    expect(map(mcpRequest({ method: 'DELETE', headers: { 'mcp-session-id': 's' } })).input.mcp).toEqual({ method: 'DELETE', server: 'toolgate', session_id: 's' });
  });

  it('accepts Mcp-Method / Mcp-Name headers that agree with the body', () => {
    const ok = map(mcpRequest({ body: call('k8s_list_pods', { namespace: 'staging' }), headers: { 'mcp-method': 'tools/call', 'mcp-name': 'k8s_list_pods' } }));
    expect(ok.toolCall?.tool).toBe('k8s_list_pods');
  });
});

describe('MCP bad input: specific JSON-RPC refusals', () => {
  it('refuses a batch, with no id to answer', () => {
    const r = refusal(() => map(mcpRequest({ body: [call('k8s_list_pods', { namespace: 'staging' }, 1)] })));
    expect(r).toMatchObject({ code: 'invalid_jsonrpc', rpcCode: -32600, jsonRpcId: undefined, httpStatus: 400 });
    expect(r.message).toMatch(/batches are not supported/);
  });

  it('reads the body with the strict reader: duplicate keys in params are refused', () => {
    const r = refusal(() => map(mcpRequest({ raw: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s_list_pods","arguments":{"namespace":"staging","namespace":"production"}}}' })));
    expect(r).toMatchObject({ code: 'invalid_jsonrpc', rpcCode: -32700 });
    expect(r.message).toMatch(/duplicate key "namespace" in object at \/params\/arguments/);
    expect(refusal(() => map(mcpRequest({ raw: '{"jsonrpc":"2.0",' }))).rpcCode).toBe(-32700);
    expect(refusal(() => map(mcpRequest({ raw: '' }))).message).toMatch(/empty body/);
  });

  it('refuses a request without an id, and an id on a notification', () => {
    expect(refusal(() => map(mcpRequest({ body: { jsonrpc: '2.0', method: 'tools/call', params: { name: 'k8s_list_pods' } } }))).message).toMatch(/request tools\/call has no "id"/);
    expect(refusal(() => map(mcpRequest({ body: { jsonrpc: '2.0', id: 1, method: 'notifications/initialized' } }))).code).toBe('invalid_jsonrpc');
    expect(refusal(() => map(mcpRequest({ body: { jsonrpc: '1.0', id: 1, method: 'ping' } }))).jsonRpcId).toBe(1);
    expect(refusal(() => map(mcpRequest({ body: { jsonrpc: '2.0', id: { a: 1 }, method: 'ping' } }))).message).toMatch(/"id" must be a string or a number/);
  });

  it('refuses headers that disagree with the body (HeaderMismatch)', () => {
    const m = refusal(() => map(mcpRequest({ body: call('k8s_list_pods', { namespace: 'staging' }), headers: { 'mcp-method': 'tools/list' } })));
    expect(m).toMatchObject({ code: 'header_mismatch', jsonRpcId: 7, httpStatus: 400 });
    expect(m.message).toMatch(/^HeaderMismatch: Mcp-Method header "tools\/list"/);
    const n = refusal(() => map(mcpRequest({ body: call('k8s_list_pods', { namespace: 'staging' }), headers: { 'mcp-name': 'k8s_scale_deployment' } })));
    expect(n.message).toMatch(/Mcp-Name header "k8s_scale_deployment" disagrees with the body's name "k8s_list_pods"/);
  });

  it('answers a bad tools/call with its id: unknown tool, invalid arguments, bad params', () => {
    const unknown = refusal(() => map(mcpRequest({ body: call('nope', {}) })));
    expect(unknown).toMatchObject({ code: 'unknown_tool', rpcCode: -32602, jsonRpcId: 7, tool: 'nope', agentId: 'ops-bot' });
    const invalid = refusal(() => map(mcpRequest({ body: call('k8s_scale_deployment', { namespace: 'staging', name: 'a', replicas: -1 }) })));
    expect(invalid).toMatchObject({ code: 'invalid_arguments', rpcCode: -32602, details: [{ path: '/replicas', message: 'must be >= 0' }] });
    expect(refusal(() => map(mcpRequest({ body: call('k8s_list_pods', [1]) }))).message).toMatch(/params.arguments .* must be an object/);
    expect(refusal(() => map(mcpRequest({ body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} } }))).message).toMatch(/needs params.name/);
  });

  it('refuses an unauthenticated message, an unknown server, a method other than POST/GET/DELETE', () => {
    const anon = refusal(() => map(mcpRequest({ body: call('k8s_list_pods', {}), jwt: null })));
    expect(anon).toMatchObject({ code: 'unauthenticated', httpStatus: 401 });
    expect(refusal(() => map(mcpRequest({ server: 'github', body: call('x', {}) }))).code).toBe('unknown_mcp_server');
    expect(refusal(() => map(mcpRequest({ method: 'PUT', body: {} }))).code).toBe('method_not_allowed');
    expect(refusal(() => map(mcpRequest({ body: call('k8s_list_pods', {}), headers: { 'x-envoy-auth-partial-body': 'true' } }))).code).toBe('body_too_large');
  });
});

describe('the MCP server registry', () => {
  it('refuses the reserved name, duplicates, credentials in the URL', () => {
    const doc = (extra: string) => `apiVersion: toolgate.dev/v1\nkind: McpServers\nservers:\n${extra}`;
    expect(() => parseMcpServers(doc('  - { name: toolgate, url: "http://a/mcp" }\n'), 'f')).toThrow(/reserved/);
    expect(() => parseMcpServers(doc('  - { name: a, url: "http://a/mcp" }\n  - { name: a, url: "http://b/mcp" }\n'), 'f')).toThrow(/duplicate/);
    expect(() => parseMcpServers(doc('  - { name: a, url: "http://u:p@a/mcp" }\n'), 'f')).toThrow(/user info/);
    const ok = parseMcpServers(doc('  - { name: kube, url: "https://k.example:8443/x/mcp", timeout_seconds: 60, credentials: { header: Authorization, value_env: KUBE_MCP_TOKEN } }\n'), 'f');
    expect(ok.get('kube')).toMatchObject({ scheme: 'https', host: 'k.example', port: 8443, path: '/x/mcp', timeout_seconds: 60, connect_timeout_seconds: 2 });
  });
});

describe('the MCP input as JSON', () => {
  it('writes large arguments once, at three places, and is the same document when filled in', async () => {
    const { encodeInputJson, wholeInputJson } = await import('../../../src/authz/input/input-json.js');
    const big = call('echo', { message: 'x'.repeat(8192) });
    const m = map(mcpRequest({ body: big }));
    const encoded = encodeInputJson(m.input, m.rawArguments);
    expect(encoded.shared?.holes.map((h) => h.path.join('.'))).toEqual(['parsed_body.params.arguments', 'mcp.params.arguments', 'tool_call.arguments']);
    expect(encoded.skeleton.length).toBeLessThan(8192 + 4096); // the arguments once: in the body text only
    const whole = wholeInputJson(encoded);
    expect(whole.length).toBe(encoded.byteLength);
    expect(JSON.parse(whole.toString())).toEqual(JSON.parse(JSON.stringify(m.input)));
  });
});
