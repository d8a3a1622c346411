import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { EXEC_NS, startExecutionCluster, TARGET_NS, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { policiesWith, waitFor } from './policy-bundles.js';
import { buildSeedBundle, startStack, type Stack } from './stack.js';

/**
 * Obligations with the Kubernetes Job runner on a real node (real kube-apiserver, controller-manager,
 * scheduler, kubelet, containerd, runc): through Envoy, the Job the executor creates carries the obliged
 * deadline, limits and network label, and the running tool meets them (OOM-killed at the obliged memory,
 * DeadlineExceeded at the obliged deadline, no API access without network), where the catalog's settings let
 * the same call through. (NetworkPolicy is not enforced by this node's bridge CNI: docs/execution.md says what
 * is enforced where.)
 */
const INSTANCE = 'toolgate-executor-obligations';
const AGENTS = ['ops-bot', 'limited-bot', 'hasty-bot'];

const E2E_RULES = `package agent.authz

import rego.v1

allow if {
	input.tool_call.tool in {"sandbox_limits", "allocate_memory"}
	input.agent_id in data.authorized_agents
}

obligations["timeout_seconds"] := 4 if input.agent_id == "hasty-bot"
obligations["timeout_seconds"] := 20 if input.agent_id == "limited-bot"
obligations["memory"] := "64Mi" if input.agent_id == "limited-bot"
obligations["cpu"] := "250m" if input.agent_id == "limited-bot"
obligations["network"] := "none" if input.agent_id == "limited-bot"
`;

describe('obligations with the Kubernetes Job runner on a real node', () => {
  let cluster: ExecutionCluster;
  let stack: Stack;
  let admin: KubeConfig;
  const jwts: Record<string, string> = {};

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'toolgate-obligations-kube-'));
    const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: Record<string, unknown>[] };
    const invoke = (name: string, execution: Record<string, unknown>): Record<string, unknown> => ({ name, description: name, action: 'invoke', resource: name, input_schema: { type: 'object' }, execution });
    doc.tools.push(invoke('sandbox_limits', { timeout_seconds: 30, network: 'any', resources: { cpu: '500m', memory: '256Mi' } }), invoke('allocate_memory', { timeout_seconds: 30, resources: { cpu: '500m', memory: '256Mi' } }));
    const catalogPath = join(work, 'catalog.yaml');
    await writeFile(catalogPath, toYaml(doc));
    const policies = await policiesWith(work, 'policies', { 'data.json': JSON.stringify({ authorized_agents: AGENTS }), 'agent/authz/e2e_obligations.rego': E2E_RULES });
    const bundle = await buildSeedBundle(work, 'rev-obligations-kube', policies);
    cluster = await startExecutionCluster(catalogPath);
    admin = cluster.admin;
    stack = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, instance: INSTANCE, ...cluster.runner }, catalogPath, bundle: { file: bundle }, maxInFlight: 4, executorConfig: { max_in_flight_per_agent: 4 } });
    for (const a of AGENTS) jwts[a] = await stack.jwtFor(a);
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  const call = (agent: string, tool: string, args: unknown) => stack.call(`/v1/tools/${tool}`, args, { jwt: jwts[agent] as string });
  const jobsFor = async (callId: string): Promise<V1Job[]> => (await admin.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;
  const podsFor = async (callId: string): Promise<V1Pod[]> => (await admin.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: EXEC_NS, labelSelector: `toolgate.dev/call-id=${callId}` })).items;

  it('the Job carries the obliged deadline, limits and network label, and no API token; the catalog\'s otherwise', async () => {
    const limited = await call('limited-bot', 'sandbox_limits', {});
    expect(limited.status).toBe(200);
    const [job] = await jobsFor(limited.json.call_id);
    expect(job?.spec?.activeDeadlineSeconds).toBe(20);
    const container = job?.spec?.template.spec?.containers[0];
    expect(container?.resources).toEqual({ limits: { cpu: '250m', memory: '64Mi' }, requests: { cpu: '250m', memory: '64Mi' } });
    expect(job?.spec?.template.metadata?.labels?.['toolgate.dev/network']).toBe('none');
    expect(JSON.parse(job?.metadata?.annotations?.['toolgate.dev/obligations'] ?? '{}')).toEqual({ cpu: '250m', memory: '64Mi', network: 'none', timeout_seconds: 20 });
    // The pod the kubelet ran has those limits (what the node enforces through the container's cgroup).
    const [pod] = await podsFor(limited.json.call_id);
    expect(pod?.spec?.containers[0]?.resources?.limits).toEqual({ cpu: '250m', memory: '64Mi' });

    const plain = await call('ops-bot', 'sandbox_limits', {});
    expect(plain.status).toBe(200);
    const [plainJob] = await jobsFor(plain.json.call_id);
    expect(plainJob?.spec?.activeDeadlineSeconds).toBe(30);
    expect(plainJob?.spec?.template.spec?.containers[0]?.resources?.limits).toEqual({ cpu: '500m', memory: '256Mi' });
    expect(plainJob?.spec?.template.metadata?.labels?.['toolgate.dev/network']).toBe('any');
  });

  it('network: none takes the Kubernetes API away: the obliged k8s_list_pods fails in its pod, the plain one lists', async () => {
    const plain = await call('ops-bot', 'k8s_list_pods', { namespace: TARGET_NS });
    expect(plain.status).toBe(200);
    const limited = await call('limited-bot', 'k8s_list_pods', { namespace: TARGET_NS });
    expect(limited.status).toBe(502);
    expect(limited.json.error.code).toBe('tool_failed');
    const [pod] = await podsFor(limited.json.error.call_id);
    expect(pod?.spec?.volumes?.map((v) => v.name)).not.toContain('kube-api-access');
    expect(pod?.metadata?.labels?.['toolgate.dev/network']).toBe('none');
  });

  it('memory: the container is OOM-killed at the obliged 64Mi, where the catalog\'s 256Mi lets it allocate', async () => {
    const plain = await call('ops-bot', 'allocate_memory', { mebibytes: 128 });
    expect(plain.status).toBe(200);
    expect(plain.json.result).toEqual({ allocated_mebibytes: 128 });
    const limited = await call('limited-bot', 'allocate_memory', { mebibytes: 128, hold_seconds: 2 });
    expect(limited.status).toBe(502);
    expect(limited.json.error.message).toMatch(/OOM-killed.*64Mi/);
    const [pod] = await podsFor(limited.json.error.call_id);
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('OOMKilled');
  });

  it('timeout_seconds: the Job\'s activeDeadlineSeconds is the obliged 4 s, and the call ends there (the catalog gives sleep 65 s)', async () => {
    const t0 = Date.now();
    const pending = call('hasty-bot', 'sleep', { seconds: 30 });
    let job: V1Job | undefined;
    await waitFor(async () => {
      const jobs = (await admin.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: EXEC_NS, labelSelector: `toolgate.dev/executor=${INSTANCE},toolgate.dev/tool=sleep` })).items;
      job = jobs.find((j) => j.metadata?.annotations?.['toolgate.dev/agent-id'] === 'hasty-bot');
      return job !== undefined;
    }, 30_000, 'the sleep Job');
    expect(job?.spec?.activeDeadlineSeconds).toBe(4);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.json.error.code).toBe('tool_timeout');
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
