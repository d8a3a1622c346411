import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckService } from '../../../../src/authz/check-service.js';
import type { CheckRequest, CheckResponse } from '../../../../src/authz/grpc/check-types.js';
import { jsonToStruct } from '../../../../src/authz/grpc/struct.js';
import { resolveHistoryConfig } from '../../../../src/authz/history/history-config.js';
import { HistoryUnavailable, type HistoryInput, type HistoryStore } from '../../../../src/authz/history/history-input.js';
import { HistoryMetrics } from '../../../../src/authz/history/history-metrics.js';
import { MemoryHistoryStore } from '../../../../src/authz/history/memory-history-store.js';
import { PolicyHistory } from '../../../../src/authz/history/policy-history.js';
import { DEFAULT_IDENTITY_OPTIONS } from '../../../../src/authz/input/agent-identity.js';
import type { JsonObject } from '../../../../src/authz/input/envoy-input.js';
import { AuthzMetrics } from '../../../../src/authz/observability/metrics.js';
import type { PolicyEngine, PolicyEvaluation } from '../../../../src/authz/policy/policy-engine.js';
import { loadToolCatalogFile, type ToolCatalog } from '../../../../src/catalog/tool-catalog.js';
import { createLogger } from '../../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../../src/shared/repo-paths.js';

/**
 * Test double for the policy engine: a function of the input standing in for a compiled bundle (the e2e test
 * runs the real loop guard through Envoy). `reads` says whether "the bundle" reads input.history.
 */
function functionEngine(decide: (input: JsonObject) => unknown, reads: boolean): PolicyEngine & { inputs: JsonObject[] } {
  const inputs: JsonObject[] = [];
  return {
    kind: 'embedded',
    decisionPath: 'agent/authz',
    inputs,
    async evaluate(input: JsonObject): Promise<PolicyEvaluation> {
      inputs.push(input);
      return { result: decide(input), revision: 'rev-1' };
    },
    readsHistory: () => reads,
    ready: () => true,
    close: async () => {},
  };
}

/** The loop guard's logic: the same call at most twice a minute; `cost` 3 with each allow. */
const loopGuard = (input: JsonObject): unknown => {
  const same = (input.history as unknown as HistoryInput | undefined)?.same_arguments['1m'] ?? 0;
  return same >= 2 ? { allow: false, reasons: [`the same call was made ${same} times in the last minute; wait or change the arguments`] } : { allow: true, cost: 3 };
};

/** Test double for an unreachable store. */
const downStore: HistoryStore = {
  describe: 'redis://store.invalid:6379/0',
  observe: async () => {
    throw new HistoryUnavailable('the history store redis://store.invalid:6379/0 is unavailable: connection refused');
  },
  settle: async () => undefined,
  finish: async () => undefined,
  close: async () => undefined,
};

let catalog: ToolCatalog;
beforeAll(async () => {
  catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
});

function service(engine: PolicyEngine, store: HistoryStore, logLines: string[] = []): { svc: CheckService; metrics: AuthzMetrics } {
  const log = createLogger('test', (l) => logLines.push(l));
  const metrics = new AuthzMetrics();
  const history = new PolicyHistory(store, engine, resolveHistoryConfig(undefined), 200, new HistoryMetrics(metrics.registry), log);
  return { svc: new CheckService({ mapper: { catalog, identity: DEFAULT_IDENTITY_OPTIONS }, engine, metrics, log, decisionLog: createLogger('test', () => {}), history }), metrics };
}

const jwt = { metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': jsonToStruct({ jwt_payload: { sub: 'ops-bot' } }) } } };

function rest(args: unknown): CheckRequest {
  return { attributes: { request: { http: { id: 'r', method: 'POST', path: '/v1/tools/echo', headers: { 'content-type': 'application/json' }, raw_body: Buffer.from(JSON.stringify(args)) } }, context_extensions: { protocol: 'rest' }, ...jwt } };
}

function mcp(args: unknown, id = 'call-1'): CheckRequest {
  const body = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: args } };
  return { attributes: { request: { http: { id: 'r', method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': 's-1' }, raw_body: Buffer.from(JSON.stringify(body)) } }, context_extensions: { protocol: 'mcp', mcp_server: 'toolgate' }, ...jwt } };
}

const allowed = (r: CheckResponse): boolean => r.ok_response !== undefined;

describe('input.history on the check path', () => {
  it('REST and MCP tools/call are one history: the same arguments (any key order) count together', async () => {
    const store = new MemoryHistoryStore();
    const engine = functionEngine(loopGuard, true);
    const { svc } = service(engine, store);
    expect(allowed(await svc.check(rest({ message: 'hi', namespace: 'staging' }), undefined))).toBe(true);
    const second = await svc.check(mcp({ namespace: 'staging', message: 'hi' }), undefined);
    expect(allowed(second), second.denied_response?.body).toBe(true);
    const third = await svc.check(mcp({ message: 'hi', namespace: 'staging' }, 'call-3'), undefined);
    expect(allowed(third)).toBe(false);
    expect(JSON.parse(third.denied_response?.body ?? '{}').error.message).toContain('the same call was made 2 times in the last minute');
    // What the policy saw on the third check (before it): two calls, none refused, cost 3 spent twice.
    // (Over MCP the engine may also be asked other questions: the checks' inputs are those with history.)
    const seen = (): HistoryInput[] => engine.inputs.filter((i) => i.history !== undefined).map((i) => i.history as unknown as HistoryInput);
    expect(seen()).toHaveLength(3);
    const h = seen()[2] as HistoryInput;
    expect(h.agent.calls['1m']).toBe(2);
    expect(h.tool.calls['1m']).toBe(2);
    expect(h.agent.denied['1m']).toBe(0);
    expect(h.agent.budget.spent).toBe(6);
    expect(h.agent.in_flight).toBe(2);
    // The refusal is recorded: the next check sees it.
    await svc.check(rest({ message: 'other' }), undefined);
    expect(seen()[3]?.agent.denied['1m']).toBe(1);
  });

  it('a bundle that does not read history gets none and never touches the store', async () => {
    let observed = 0;
    const store = new MemoryHistoryStore();
    const counting: HistoryStore = { ...store, describe: 'in-process', observe: async (...a) => (observed++, store.observe(...a)), settle: (...a) => store.settle(...a), finish: (...a) => store.finish(...a), close: () => store.close() };
    const engine = functionEngine(() => ({ allow: true }), false);
    const { svc } = service(engine, counting);
    expect(allowed(await svc.check(rest({ message: 'hi' }), undefined))).toBe(true);
    expect(engine.inputs[0]?.history).toBeUndefined();
    expect(observed).toBe(0);
    // Nor with the store down.
    const down = service(functionEngine(() => ({ allow: true }), false), downStore);
    expect(allowed(await down.svc.check(rest({ message: 'hi' }), undefined))).toBe(true);
  });

  it('the store down: a history-reading policy is not evaluated, the call is refused naming the store (REST 503, MCP JSON-RPC error), logged and counted', async () => {
    const lines: string[] = [];
    const engine = functionEngine(loopGuard, true);
    const { svc, metrics } = service(engine, downStore, lines);
    const r = await svc.check(rest({ message: 'hi' }), undefined);
    expect(r.denied_response?.status.code).toBe(503);
    const body = JSON.parse(r.denied_response?.body ?? '{}') as { error: { code: string; message: string } };
    expect(body.error.code).toBe('history_unavailable');
    expect(body.error.message).toBe('the history store redis://store.invalid:6379/0 is unavailable: connection refused; the policy reads input.history, so the call is refused until the store answers again');
    const m = await svc.check(mcp({ message: 'hi' }, 'call-9'), undefined);
    const rpc = JSON.parse(m.denied_response?.body ?? '{}') as { id: string; error: { code: number; data: { code: string } } };
    expect(rpc.id).toBe('call-9');
    expect(rpc.error.data.code).toBe('history_unavailable');
    expect(engine.inputs).toHaveLength(0);
    expect(lines.join('\n')).toContain('history store unavailable');
    expect(await metrics.registry.getSingleMetricAsString('toolgate_history_store_operations_total')).toContain('operation="observe",outcome="unavailable"} 2');
  });

  it('a cost that is not a number >= 0 fails the check (policy_error), fail closed', async () => {
    const { svc } = service(functionEngine(() => ({ allow: true, cost: -1 }), true), new MemoryHistoryStore());
    const r = await svc.check(rest({ message: 'hi' }), undefined);
    expect(r.denied_response?.status.code).toBe(500);
    expect(JSON.parse(r.denied_response?.body ?? '{}').error.message).toContain('cost must be a number >= 0');
  });
});
