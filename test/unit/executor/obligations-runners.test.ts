import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile, type ToolDefinition } from '../../../src/catalog/tool-catalog.js';
import { obligatedTool } from '../../../src/executor/call/obligated-tool.js';
import { buildJobManifest, type JobSettings } from '../../../src/executor/runners/kubernetes/job-manifest.js';
import { PooledKubernetesRunner, type HoldingJobRunner } from '../../../src/executor/runners/kubernetes/warm-pool/pooled-runner.js';
import type { WarmPools } from '../../../src/executor/runners/kubernetes/warm-pool/warm-pools.js';
import type { ToolInvocation, ToolOutcome } from '../../../src/executor/runners/runner.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const settings: JobSettings = {
  namespace: 'toolgate-exec',
  image: 'toolgate/runner:test',
  command: ['node', 'runner.js'],
  ttlSecondsAfterFinished: 30,
  resultUrl: 'http://executor/internal/v1/calls/0123456789abcdef0123/result',
  defaultServiceAccount: 'toolgate-tool-default',
  executor: 'toolgate-executor-0',
  params: '{}',
};

async function tool(name: string): Promise<ToolDefinition> {
  const t = (await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'))).get(name);
  if (!t) throw new Error(`no ${name} in the default catalog`);
  return t;
}

function invocation(t: ToolDefinition, header?: string): ToolInvocation {
  const obliged = obligatedTool(t, header);
  if (!obliged.ok) throw new Error(obliged.message);
  return { callId: '0123456789abcdef0123', tool: obliged.tool, ...(obliged.obligations ? { obligations: obliged.obligations } : {}), arguments: {}, agentId: 'ops-bot', decisionId: 'd-1', policyRevision: 'r-1', signal: new AbortController().signal };
}

describe('obligations in a call\'s Job', () => {
  it('the Job has the obliged deadline, limits, network label, and no API token', async () => {
    const list = await tool('k8s_list_pods');
    const plain = buildJobManifest(invocation(list), settings);
    expect(plain.spec?.activeDeadlineSeconds).toBe(30);
    expect(plain.spec?.template.metadata?.labels?.['toolgate.dev/network']).toBe('cluster');
    expect(plain.spec?.template.spec?.volumes?.map((v) => v.name)).toContain('kube-api-access');

    const job = buildJobManifest(invocation(list, '{"cpu":"100m","memory":"64Mi","network":"none","timeout_seconds":5}'), settings);
    expect(job.spec?.activeDeadlineSeconds).toBe(5);
    const container = job.spec?.template.spec?.containers[0];
    expect(container?.resources).toEqual({ limits: { cpu: '100m', memory: '64Mi' }, requests: { cpu: '100m', memory: '64Mi' } });
    expect(job.spec?.template.metadata?.labels?.['toolgate.dev/network']).toBe('none');
    expect(job.spec?.template.spec?.volumes?.map((v) => v.name)).not.toContain('kube-api-access');
    expect(container?.volumeMounts?.map((v) => v.name)).not.toContain('kube-api-access');
    expect(JSON.parse(job.metadata?.annotations?.['toolgate.dev/obligations'] ?? '{}')).toEqual({ cpu: '100m', memory: '64Mi', network: 'none', timeout_seconds: 5 });
  });
});

describe('warm pods and obligations', () => {
  it('a call whose obligations tighten the catalog never claims a warm pod: it runs as a Job', async () => {
    const echo = await tool('echo');
    const ran: string[] = [];
    // Test doubles: a Job runner whose warm-call lock is always free, and a pool with a ready pod for echo (the real ones need a cluster).
    const jobs: HoldingJobRunner = {
      run: async (): Promise<ToolOutcome> => (ran.push('job'), { status: 'succeeded', result: {}, durationMs: 1 }),
      close: async () => undefined,
      hold: async () => ({ held: { ref: { name: 'tg-x', uid: 'uid-x' }, token: 't', settings: {} as JobSettings } }),
      runHeld: async (): Promise<ToolOutcome> => (ran.push('job'), { status: 'succeeded', result: {}, durationMs: 1 }),
      settleHeld: async () => undefined,
      storedResultOf: async () => undefined,
    };
    const pools = {
      has: (name: string) => name === 'echo',
      reserve: () => 'warm-echo-1',
      unreserve: () => undefined,
      claim: async () => true,
      run: async (): Promise<ToolOutcome> => (ran.push('warm'), { status: 'succeeded', result: {}, durationMs: 1 }),
      close: async () => undefined,
    } as unknown as WarmPools;
    const runner = new PooledKubernetesRunner(jobs, pools);
    await runner.run(invocation(echo));
    await runner.run(invocation(echo, '{"memory":"64Mi"}'));
    // Obligations equal to the catalog's change nothing: the warm pod serves.
    await runner.run(invocation(echo, '{"network":"none","timeout_seconds":10}'));
    expect(ran).toEqual(['warm', 'job', 'warm']);
  });
});
