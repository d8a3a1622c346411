import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { EXEC_NS, startExecutionCluster, TARGET_NS, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { startCollector, type CollectedSpan, type Collector } from '../support/otel-collector.js';
import { startStack, type Stack } from './stack.js';
import { join } from 'node:path';

/**
 * One trace per tool call, collected by a real OpenTelemetry Collector (the repo's configuration, file
 * exporter): the agent's traceparent -> Envoy -> the authz check -> Envoy's upstream span -> the executor ->
 * the Job (TRACEPARENT) -> the runner -> the call to the Kubernetes API. A refused call's trace ends at the
 * decision.
 */
describe('one trace per tool call, Envoy to Job', () => {
  let collector: Collector;
  let cluster: ExecutionCluster;
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    const catalogPath = join(REPO_ROOT, 'src', 'catalog', 'tools.yaml');
    cluster = await startExecutionCluster(catalogPath);
    // On the bridge address: the runner in each Job's pod sends its spans there.
    collector = await startCollector({ host: cluster.runner.callbackHost });
    stack = await startStack({
      engine: 'embedded',
      executor: 'kubernetes',
      kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, ...cluster.runner },
      catalogPath,
      otlpEndpoint: collector.endpoint,
    });
    jwt = await stack.jwtFor('ops-bot');
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
    await collector?.stop();
  });

  /** The agent's own session span, as an agent framework would send it. */
  function agentTraceparent(): { traceId: string; spanId: string; header: string } {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
  }

  const one = (spans: CollectedSpan[], p: (s: CollectedSpan) => boolean, what: string): CollectedSpan => {
    const found = spans.filter(p);
    if (found.length !== 1) throw new Error(`expected one ${what}, found ${found.length}: ${spans.map((s) => `${s.service}:${s.name}`).join(', ')}`);
    return found[0] as CollectedSpan;
  };

  it('an allowed call run in a Job is one trace: Envoy, authz, executor and runner, under the agent span', async () => {
    const agent = agentTraceparent();
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: TARGET_NS, name: 'api-server' }, { jwt, headers: { traceparent: agent.header } });
    expect(res.status).toBe(200);
    expect(res.json.result).toMatchObject({ name: 'api-server', replicas: 1 });

    const services = ['toolgate-envoy', 'toolgate-authz', 'toolgate-executor', 'toolgate-runner'];
    const spans = await collector.waitForTrace(agent.traceId, (t) => services.every((svc) => t.some((s) => s.service === svc)) && t.some((s) => s.name === 'toolgate.executor.call') && t.some((s) => s.name.startsWith('GET apps/v1')));
    const byId = new Map(spans.map((s) => [s.spanId, s]));

    // Every span hangs off the agent's span: nothing is orphaned, nothing starts a trace of its own.
    const roots = spans.filter((s) => !byId.has(s.parentSpanId));
    expect(roots.map((s) => [s.service, s.parentSpanId])).toEqual([['toolgate-envoy', agent.spanId]]);
    const ingress = roots[0] as CollectedSpan;
    expect(ingress.attributes['http.status_code'] ?? ingress.attributes['http.response.status_code']).toBeDefined();

    // Envoy -> ext_authz (Envoy's span) -> the authz server's check -> the policy evaluation.
    const check = one(spans, (s) => s.service === 'toolgate-authz' && s.name === 'toolgate.authz.check', 'authz check span');
    const checkParent = byId.get(check.parentSpanId) as CollectedSpan;
    expect(checkParent.service).toBe('toolgate-envoy');
    expect(check.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.method': 'Check',
      'toolgate.decision.allowed': true,
      'gen_ai.tool.name': 'k8s_get_deployment',
      'toolgate.agent.id': 'ops-bot',
      'toolgate.policy.path': 'agent/authz',
      'toolgate.policy.revision': expect.any(String),
    });
    expect(check.attributes['toolgate.tool.arguments_digest']).toMatch(/^sha256:/);
    expect(JSON.stringify(check.attributes)).not.toContain('api-server'); // argument values stay out of spans
    const evaluate = one(spans, (s) => s.name === 'toolgate.policy.evaluate', 'policy evaluation span');
    expect(evaluate.parentSpanId).toBe(check.spanId);

    // Envoy's upstream span -> the executor's call -> the run (Job lifecycle events) -> the runner in the Job.
    const call = one(spans, (s) => s.service === 'toolgate-executor' && s.name === 'toolgate.executor.call', 'executor call span');
    const upstream = byId.get(call.parentSpanId) as CollectedSpan;
    expect(upstream.service).toBe('toolgate-envoy');
    expect(upstream.spanId).not.toBe(checkParent.spanId);
    expect(call.attributes).toMatchObject({ 'gen_ai.tool.name': 'k8s_get_deployment', 'http.response.status_code': 200, 'toolgate.call.outcome': 'succeeded', 'toolgate.decision.id': res.headers['x-toolgate-decision-id'] ?? expect.any(String) });
    expect(call.attributes['toolgate.result.size_bytes']).toBeGreaterThan(0);
    const runSpan = one(spans, (s) => s.name === 'toolgate.runner.run', 'run span');
    expect(runSpan.parentSpanId).toBe(call.spanId);
    // The pod's phases as the runner saw them (a phase shorter than the pod poll may go unseen), in order.
    const events = runSpan.events.map((e) => e.name);
    expect(events[0]).toBe('job.created');
    expect(events.at(-1)).toBe('job.finished');
    // pod.started and pod.running come from the Job's status, read every poll; pod.scheduled and
    // container.started from the pod, read every 500 ms: each sequence is in order, their interleaving varies.
    const fromJob = new Set(['pod.started', 'pod.running']);
    expect(events.filter((e) => !fromJob.has(e))).toEqual(['job.created', 'pod.scheduled', 'container.started', 'job.finished'].filter((e) => events.includes(e)));
    expect(events.filter((e) => fromJob.has(e) || e === 'job.created' || e === 'job.finished')).toEqual(['job.created', 'pod.started', 'pod.running', 'job.finished'].filter((e) => events.includes(e)));
    expect(events).toContain('pod.scheduled');
    expect(runSpan.events[0]?.attributes).toMatchObject({ 'k8s.namespace.name': EXEC_NS, 'k8s.job.name': expect.stringMatching(/^tg-/) });

    const tool = one(spans, (s) => s.service === 'toolgate-runner' && s.name === 'execute_tool k8s_get_deployment', 'runner tool span');
    expect(tool.parentSpanId).toBe(runSpan.spanId);
    expect(tool.attributes).toMatchObject({ 'gen_ai.tool.name': 'k8s_get_deployment', 'toolgate.result.status': 'ok' });
    const api = one(spans, (s) => s.service === 'toolgate-runner' && s.name === 'GET apps/v1 deployments', 'Kubernetes API span');
    expect(api.parentSpanId).toBe(tool.spanId);
    expect(api.kind).toBe(3); // CLIENT
    expect(api.attributes).toMatchObject({ 'k8s.namespace.name': TARGET_NS, 'k8s.deployment.name': 'api-server', 'http.request.method': 'GET' });

    // Children start within their parents: the timeline reads top to bottom.
    for (const s of spans) {
      const parent = byId.get(s.parentSpanId);
      if (parent) expect(s.startNs).toBeGreaterThanOrEqual(parent.startNs);
    }
  });

  it('a denied call is a trace that ends at the decision, with its reasons', async () => {
    const agent = agentTraceparent();
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'production', name: 'api-server' }, { jwt, headers: { traceparent: agent.header } });
    expect(res.status).toBe(403);
    const spans = await collector.waitForTrace(agent.traceId, (t) => t.some((s) => s.service === 'toolgate-authz' && s.name === 'toolgate.authz.check') && t.some((s) => s.service === 'toolgate-envoy' && s.parentSpanId === agent.spanId));
    const check = one(spans, (s) => s.name === 'toolgate.authz.check', 'authz check span');
    expect(check.attributes).toMatchObject({ 'toolgate.decision.allowed': false, 'toolgate.decision.result': 'denied', 'toolgate.decision.reasons': ['get is only allowed in namespace staging (got production)'] });
    // A refusal is the check working, not failing: the span's status stays unset (gRPC OK), the result says denied.
    expect(check.status.code ?? 0).toBe(0);
    // Give any stray span time to arrive: none may come from the executor or a runner.
    await new Promise((r) => setTimeout(r, 1500));
    const all = (await collector.spans()).filter((s) => s.traceId === agent.traceId);
    expect(new Set(all.map((s) => s.service))).toEqual(new Set(['toolgate-envoy', 'toolgate-authz']));
  });
});

/**
 * The embedded default: the tool runs in a local sandbox with no network, and its spans still join the
 * call's trace, through the executor's span relay (a Unix socket bound into the sandbox).
 */
describe('one trace per tool call, Envoy to local sandbox', () => {
  let collector: Collector;
  let stack: Stack;
  let jwt: string;

  beforeAll(async () => {
    collector = await startCollector();
    stack = await startStack({ engine: 'embedded', executor: 'local', otlpEndpoint: collector.endpoint });
    jwt = await stack.jwtFor('ops-bot');
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await collector?.stop();
  });

  it('the sandboxed runner\'s span is a child of the executor\'s run span, in the agent\'s trace', async () => {
    const traceId = randomBytes(16).toString('hex');
    const res = await stack.call('/v1/tools/echo', { message: 'traced' }, { jwt, headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } });
    expect(res.status).toBe(200);
    const spans = await collector.waitForTrace(traceId, (t) => t.some((s) => s.service === 'toolgate-runner') && t.some((s) => s.name === 'toolgate.runner.run'));
    const tool = spans.filter((s) => s.service === 'toolgate-runner');
    expect(tool.map((s) => s.name)).toEqual(['execute_tool echo']);
    const run = spans.find((s) => s.spanId === tool[0]?.parentSpanId);
    expect(run).toMatchObject({ service: 'toolgate-executor', name: 'toolgate.runner.run', attributes: { 'toolgate.runner': 'local' } });
    expect(run?.events.map((e) => e.name)).toEqual(['sandbox.started', 'sandbox.exited']);
    expect(tool[0]?.attributes).toMatchObject({ 'gen_ai.tool.name': 'echo', 'toolgate.result.status': 'ok' });
  });
});
