import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckService } from '../../../src/authz/check-service.js';
import type { CheckRequest, CheckResponse } from '../../../src/authz/grpc/check-types.js';
import { jsonToStruct } from '../../../src/authz/grpc/struct.js';
import { DEFAULT_IDENTITY_OPTIONS } from '../../../src/authz/input/agent-identity.js';
import type { JsonObject } from '../../../src/authz/input/envoy-input.js';
import { AuthzMetrics } from '../../../src/authz/observability/metrics.js';
import type { PolicyEngine, PolicyEvaluation } from '../../../src/authz/policy/policy-engine.js';
import { parseMcpServers } from '../../../src/catalog/mcp-servers.js';
import { loadToolCatalogFile, type ToolCatalog } from '../../../src/catalog/tool-catalog.js';
import type { ArgumentError, ToolDefinition } from '../../../src/catalog/tool-catalog.js';
import { invalidArgumentsResult } from '../../../src/executor/mcp/mcp-tool-results.js';
import { verifyAttestation } from '../../../src/shared/decision-attestation.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

/**
 * Test double for the policy engine: a plain function of the input standing in for a compiled Rego bundle
 * (the e2e tests run the real bundle through Envoy). It mirrors the seed policy's shape: reads in staging,
 * session plumbing for authorized agents, and `tools/list` per tool by action.
 */
function functionEngine(decide: (input: JsonObject) => unknown): PolicyEngine & { inputs: JsonObject[] } {
  const inputs: JsonObject[] = [];
  return {
    kind: 'embedded',
    decisionPath: 'agent/authz',
    inputs,
    async evaluate(input: JsonObject): Promise<PolicyEvaluation> {
      inputs.push(input);
      return { result: decide(input), revision: 'rev-1' };
    },
    ready: () => true,
    close: async () => {},
  };
}

const seedLike = (input: JsonObject): unknown => {
  const mcp = input.mcp as JsonObject | undefined;
  const agentOk = input.agent_id === 'ops-bot';
  if (mcp?.method === 'tools/list' && input.tool_call) return { allow: agentOk && ['get', 'list'].includes(String(input.action)) };
  if (mcp && mcp.method !== 'tools/call') return { allow: agentOk };
  const reasons: string[] = [];
  if (input.namespace !== 'staging') reasons.push(`${String(input.action)} is only allowed in namespace staging (got ${String(input.namespace)})`);
  return { allow: agentOk && reasons.length === 0, reasons };
};

let catalog: ToolCatalog;
const key = Buffer.alloc(32, 7);
beforeAll(async () => {
  catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
});

function service(engine: PolicyEngine, upstream?: { header: string; value: string }, decisionLines?: string[]): CheckService {
  const log = createLogger('test', () => {});
  const servers = parseMcpServers('apiVersion: toolgate.dev/v1\nkind: McpServers\nservers:\n  - { name: kubernetes, url: "http://127.0.0.1:1/mcp" }\n', 't');
  return new CheckService({
    mapper: { catalog, identity: DEFAULT_IDENTITY_OPTIONS, servers },
    engine,
    metrics: new AuthzMetrics(),
    log,
    decisionLog: decisionLines ? createLogger('test', (l) => decisionLines.push(l)) : log,
    attestationKey: key,
    ...(upstream ? { upstreamCredentials: new Map([['kubernetes', upstream]]) } : {}),
  });
}

function req(body: unknown, opts: { sub?: string | null; server?: string; method?: string; headers?: Record<string, string> } = {}): CheckRequest {
  const sub = opts.sub === undefined ? 'ops-bot' : opts.sub;
  return {
    attributes: {
      request: { http: { id: 'r', method: opts.method ?? 'POST', headers: { 'content-type': 'application/json', ...opts.headers }, path: '/mcp', raw_body: Buffer.from(body === undefined ? '' : JSON.stringify(body)) } },
      context_extensions: { protocol: 'mcp', mcp_server: opts.server ?? 'toolgate' },
      ...(sub ? { metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': jsonToStruct({ jwt_payload: { sub } }) } } } : {}),
    },
  };
}

function headers(r: CheckResponse): Record<string, string> {
  return Object.fromEntries((r.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
}

function denied(r: CheckResponse): { status: number; body: { jsonrpc: string; id: unknown; error: { code: number; message: string; data: Record<string, unknown> } } } {
  expect(r.denied_response).toBeDefined();
  return { status: r.denied_response?.status.code ?? 0, body: JSON.parse(r.denied_response?.body ?? '{}') };
}

const call = (name: string, args: unknown, id: number | string = 7) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('MCP decisions', () => {
  it('refuses a tools/call with HTTP 200 and a JSON-RPC error for its id carrying the reasons and the decision', async () => {
    const r = denied(await service(functionEngine(seedLike)).check(req(call('k8s_list_pods', { namespace: 'production' }, 'call-1')), undefined));
    expect(r.status).toBe(200);
    expect(r.body.jsonrpc).toBe('2.0');
    expect(r.body.id).toBe('call-1');
    expect(r.body.error.code).toBe(-32003);
    expect(r.body.error.message).toBe('the policy does not allow calling tool "k8s_list_pods": list is only allowed in namespace staging (got production)');
    expect(r.body.error.data).toMatchObject({ code: 'policy_denied', policy_revision: 'rev-1', tool: 'k8s_list_pods', reasons: ['list is only allowed in namespace staging (got production)'] });
    expect(r.body.error.data.decision_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('allows a tools/call with the MCP trusted headers and an attestation over the request body', async () => {
    const message = call('k8s_list_pods', { namespace: 'staging', labelSelector: 'app=web' });
    const res = await service(functionEngine(seedLike)).check(req(message), undefined);
    const h = headers(res);
    expect(h).toMatchObject({ 'x-toolgate-mcp-method': 'tools/call', 'x-toolgate-tool': 'k8s_list_pods', 'x-toolgate-agent-id': 'ops-bot', 'x-toolgate-agent-auth': 'jwt', 'x-toolgate-policy-revision': 'rev-1' });
    const attested = { decisionId: h['x-toolgate-decision-id'] as string, agentId: 'ops-bot', agentMethod: 'jwt', tool: 'k8s_list_pods', policyRevision: 'rev-1', scope: 'mcp:tools/call' };
    const body = Buffer.from(JSON.stringify(message));
    expect(verifyAttestation(key, { ...attested, body }, h['x-toolgate-attestation'])).toBe(true);
    expect(verifyAttestation(key, { ...attested, body: Buffer.from(JSON.stringify(call('k8s_list_pods', { namespace: 'production', labelSelector: 'app=web' }))) }, h['x-toolgate-attestation'])).toBe(false);
    expect(verifyAttestation(key, { ...attested, scope: 'rest', body }, h['x-toolgate-attestation'])).toBe(false);
    expect(res.ok_response?.headers_to_remove).toContain('authorization');
  });

  it('lists for tools/list exactly the tools the policy lets this agent call, asking once per catalog tool', async () => {
    const engine = functionEngine(seedLike);
    const h = headers(await service(engine).check(req({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), undefined));
    const reads = catalog.all().filter((t) => ['get', 'list'].includes(String(t.action))).map((t) => t.name);
    expect(reads.length).toBeGreaterThan(0);
    expect(h['x-toolgate-visible-tools']).toBe(reads.join(','));
    expect(h['x-toolgate-mcp-method']).toBe('tools/list');
    const perTool = engine.inputs.filter((i) => i.tool_call);
    expect(perTool).toHaveLength(catalog.all().length);
    expect(perTool[0]).toMatchObject({ mcp: { method: 'tools/list' }, tool_call: { protocol: 'mcp', server: 'toolgate', arguments: {} } });
    const attested = { decisionId: h['x-toolgate-decision-id'] as string, agentId: 'ops-bot', agentMethod: 'jwt', tool: '', policyRevision: 'rev-1', scope: 'mcp:tools/list' };
    expect(verifyAttestation(key, { ...attested, body: Buffer.from(reads.join(',')) }, h['x-toolgate-attestation'])).toBe(true);
  });

  it('attests other messages over the raw body, GET and DELETE over nothing', async () => {
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18' } };
    const h = headers(await service(functionEngine(seedLike)).check(req(init), undefined));
    const base = { decisionId: h['x-toolgate-decision-id'] as string, agentId: 'ops-bot', agentMethod: 'jwt', tool: '', policyRevision: 'rev-1' };
    expect(verifyAttestation(key, { ...base, scope: 'mcp:initialize', body: Buffer.from(JSON.stringify(init)) }, h['x-toolgate-attestation'])).toBe(true);
    const g = headers(await service(functionEngine(seedLike)).check(req(undefined, { method: 'GET' }), undefined));
    expect(g['x-toolgate-mcp-method']).toBe('GET');
    expect(verifyAttestation(key, { ...base, decisionId: g['x-toolgate-decision-id'] as string, scope: 'mcp:GET', body: new Uint8Array(0) }, g['x-toolgate-attestation'])).toBe(true);
  });

  it('refuses a notification with a 403 and no id; a batch and a HeaderMismatch with 400', async () => {
    const svc = service(functionEngine(seedLike));
    const n = denied(await svc.check(req({ jsonrpc: '2.0', method: 'notifications/initialized' }, { sub: 'intruder' }), undefined));
    expect(n.status).toBe(403);
    expect(n.body.id).toBeNull();
    const b = denied(await svc.check(req([call('k8s_list_pods', {})]), undefined));
    expect(b.status).toBe(400);
    expect(b.body.error).toMatchObject({ code: -32600, data: { code: 'invalid_jsonrpc' } });
    const m = denied(await svc.check(req(call('k8s_list_pods', { namespace: 'staging' }), { headers: { 'mcp-method': 'tools/list' } }), undefined));
    expect(m.status).toBe(400);
    expect(m.body.id).toBe(7);
    expect(m.body.error.message).toMatch(/^HeaderMismatch/);
    const u = denied(await svc.check(req(call('k8s_list_pods', {}), { sub: null }), undefined));
    expect(u.status).toBe(401);
    expect(u.body.error.data.code).toBe('unauthenticated');
  });

  it('refuses calling a tool the policy would not list, however its call rules read (asked once per agent, tool and revision)', async () => {
    const engine = functionEngine((input) => ({ allow: !((input.mcp as JsonObject | undefined)?.method === 'tools/list' && input.tool_call) }));
    const svc = service(engine);
    const r = denied(await svc.check(req(call('k8s_list_pods', { namespace: 'staging' })), undefined));
    expect(r.body.error.message).toContain('tool "k8s_list_pods" is not in this agent\'s tools/list');
    denied(await svc.check(req(call('k8s_list_pods', { namespace: 'staging' }, 8)), undefined));
    expect(engine.inputs.filter((i) => i.tool_call && (i.mcp as JsonObject).method === 'tools/list')).toHaveLength(1);
  });

  it('answers arguments that fail the schema with a tool execution error naming the field, still a refusal', async () => {
    const engine = functionEngine(seedLike);
    const lines: string[] = [];
    const res = await service(engine, undefined, lines).check(req(call('k8s_scale_deployment', { namespace: 'staging', name: 'api', replicas: -1 }, 'bad-1')), undefined);
    // For Envoy a denial (the call never reaches the executor); for the client HTTP 200 with a JSON-RPC result.
    expect(res.status?.code).toBe(7);
    expect(res.ok_response).toBeUndefined();
    const status = res.denied_response?.status.code;
    const body = JSON.parse(res.denied_response?.body ?? '{}') as { id: unknown; error?: unknown; result: { content: { type: string; text: string }[]; isError: boolean; _meta: Record<string, Record<string, unknown>> } };
    expect(status).toBe(200);
    expect(body.id).toBe('bad-1');
    expect(body.error).toBeUndefined();
    expect(body.result.isError).toBe(true);
    expect(body.result.content).toEqual([{ type: 'text', text: 'invalid arguments for tool "k8s_scale_deployment": /replicas must be >= 0' }]);
    const decisionId = res.denied_response?.headers.find((h) => h.header.key === 'x-toolgate-decision-id')?.header.value;
    const meta = body.result._meta['toolgate.dev/call'];
    expect(meta).toEqual({ status: 'invalid_arguments', fields: [{ path: '/replicas', message: 'must be >= 0' }], decision_id: decisionId });
    // The executor renders its own schema failures the same way: only the decision facts differ.
    const { decision_id: _d, ...executorMeta } = meta as Record<string, unknown>;
    const fromExecutor = invalidArgumentsResult(catalog.get('k8s_scale_deployment') as ToolDefinition, (meta as { fields: ArgumentError[] }).fields);
    expect({ ...body.result, _meta: { 'toolgate.dev/call': executorMeta } }).toEqual(fromExecutor);
    // Recorded as the refusal it is; the policy was never asked.
    expect(engine.inputs).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    const decision = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'decision');
    expect(decision).toMatchObject({ decision_id: decisionId, allowed: false, result: 'denied', code: 'invalid_arguments', tool: 'k8s_scale_deployment', agent_id: 'ops-bot' });
  });

  it('keeps an unknown tool a JSON-RPC error, and leaves arguments to an upstream server to that server', async () => {
    const svc = service(functionEngine(seedLike));
    const u = denied(await svc.check(req(call('no_such_tool', {})), undefined));
    expect(u.status).toBe(200);
    expect(u.body.error).toMatchObject({ code: -32602, data: { code: 'unknown_tool' } });
    // toolgate's catalog schemas are not an upstream's: the same arguments go to the policy, which decides.
    const up = await svc.check(req(call('k8s_scale_deployment', { namespace: 'staging', replicas: -1 }), { server: 'kubernetes' }), undefined);
    expect(JSON.parse(up.denied_response?.body ?? '{}')).not.toHaveProperty('result');
  });

  it('answers an engine failure with a JSON-RPC internal error for the id (fail closed)', async () => {
    const broken = functionEngine(() => 'not a decision');
    const r = denied(await service(broken).check(req(call('k8s_list_pods', { namespace: 'staging' })), undefined));
    expect(r.status).toBe(200);
    expect(r.body.error).toMatchObject({ code: -32603, data: { code: 'policy_error' } });
  });

  it('sends upstream only the decision and toolgate\'s own credentials, never the agent\'s token', async () => {
    const svc = service(functionEngine(() => ({ allow: true })), { header: 'authorization', value: 'Bearer upstream-secret' });
    const res = await svc.check(req(call('pods_list', {}), { server: 'kubernetes' }), undefined);
    const h = headers(res);
    expect(h.authorization).toBe('Bearer upstream-secret');
    expect(h['x-toolgate-attestation']).toBeUndefined();
    expect(h['x-toolgate-agent-id']).toBeUndefined();
    const plain = await service(functionEngine(() => ({ allow: true }))).check(req(call('pods_list', {}), { server: 'kubernetes' }), undefined);
    expect(plain.ok_response?.headers_to_remove).toContain('authorization');
  });
});
