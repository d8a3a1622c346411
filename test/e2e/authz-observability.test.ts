import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAccessLog, SEED_REVISION, startStack, type Stack } from './stack.js';

/** Every decision is logged, counted and visible in Envoy's access log under the same decision id. */
describe('decision observability', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('logs each decision, returns its id to Envoy (access log) and counts it', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const allowed = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'a' }, { jwt, headers: { traceparent } });
    const denied = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'production', name: 'a' }, { jwt });
    const invalid = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: 'a', replicas: -1 }, { jwt });
    expect([allowed.status, denied.status, invalid.status]).toEqual([200, 403, 400]);
    const ids = [allowed, denied, invalid].map((r) => r.headers['x-toolgate-decision-id'] as string);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // Decision log: one structured line per check, with agent, tool, action, resource, namespace, reasons, revision.
    await new Promise((r) => setTimeout(r, 200));
    const lines = (await readFile(stack.authz.logPath, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"msg":"decision"'))
      .map((l) => JSON.parse(l));
    const byId = new Map(lines.map((l) => [l.decision_id, l]));
    const a = byId.get(ids[0]);
    expect(a).toMatchObject({ agent_id: 'ops-bot', tool: 'k8s_get_deployment', action: 'get', resource: 'deployment', namespace: 'staging', allowed: true, result: 'allowed', policy_revision: SEED_REVISION });
    expect(typeof a.evaluation_ms).toBe('number');
    // Envoy starts a trace span for the check; without a tracer configured the client's trace id is kept.
    expect(a.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(byId.get(ids[1])).toMatchObject({ allowed: false, result: 'denied', code: 'policy_denied', namespace: 'production' });
    expect(byId.get(ids[1]).reasons.length).toBeGreaterThan(0);
    expect(byId.get(ids[2])).toMatchObject({ allowed: false, result: 'denied', code: 'invalid_arguments', agent_id: 'ops-bot', tool: 'k8s_scale_deployment' });

    // Envoy's access log carries the same decision ids (dynamic metadata from the authz server).
    await new Promise((r) => setTimeout(r, 500));
    const access = await readAccessLog(stack);
    for (const id of ids) expect(access.some((e) => e.decision_id === id)).toBe(true);
    const allowedEntry = access.find((e) => e.decision_id === ids[0]);
    expect(allowedEntry).toMatchObject({ agent_id: 'ops-bot', tool: 'k8s_get_deployment', policy_revision: SEED_REVISION, status: 200 });
    // The check's round trip as Envoy measured it (ext_authz filter state), in microseconds.
    expect(Number(allowedEntry?.authz_us)).toBeGreaterThan(0);
  });

  it('exposes agent_tool_calls_total with exact counts and a decision latency histogram', async () => {
    const jwt = await stack.jwtFor('metrics-bot-unauthorized');
    for (let i = 0; i < 3; i++) await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'a' }, { jwt });
    const text = await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/metrics`)).text();
    expect(text).toContain('agent_tool_calls_total{agent_id="metrics-bot-unauthorized",action="get",resource="deployment",result="denied"} 3');
    expect(text).toMatch(/toolgate_authz_decision_duration_seconds_bucket\{le="0\.001",result="denied"\} \d+/);
  });
});
