import type { V1Job } from '@kubernetes/client-node';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { KubernetesJobRunner, type KubeApis } from '../../../src/executor/runners/kubernetes/kubernetes-job-runner.js';
import type { ToolInvocation } from '../../../src/executor/runners/runner.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const FAILED: V1Job = { status: { failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] } };
const RUNNING: V1Job = { status: { active: 1 } };
const apiError = (code: number): Error => Object.assign(new Error(`HTTP ${code}`), { code, body: '{"message":"etcdserver: request timed out"}' });
const networkError = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

/**
 * TEST DOUBLE for the slice of the Kubernetes API the runner uses: each read of the Job answers what `read`
 * says for that attempt (a Job, or an error thrown); creations succeed; deletions are recorded.
 */
function kubeDouble(read: (attempt: number) => V1Job | Error): KubeApis & { reads: number; deleted: string[] } {
  const double = {
    reads: 0,
    deleted: [] as string[],
    batch: {
      createNamespacedJob: async ({ body }) => ({ ...body, metadata: { ...body.metadata, uid: 'uid-1' } }),
      readNamespacedJob: async () => {
        const answer = read(++double.reads);
        if (answer instanceof Error) throw answer;
        return answer;
      },
      deleteNamespacedJob: async ({ name }) => {
        double.deleted.push(name);
        return {};
      },
      listNamespacedJob: async () => ({ items: [] }),
    } satisfies KubeApis['batch'],
    core: {
      createNamespacedSecret: async ({ body }) => body,
      listNamespacedPod: async () => ({ items: [] }),
    } satisfies KubeApis['core'],
  };
  return double;
}

function runner(api: KubeApis, opts: { pollIntervalMs?: number; readErrorToleranceMs?: number } = {}): KubernetesJobRunner {
  return new KubernetesJobRunner({
    api,
    instance: 'executor-0',
    namespace: 'toolgate-exec',
    image: 'toolgate/runner:test',
    command: ['node', 'runner.js'],
    callbackBaseUrl: 'http://10.0.0.1:9292',
    ttlSecondsAfterFinished: 30,
    defaultServiceAccount: 'toolgate-tool-default',
    pollIntervalMs: opts.pollIntervalMs ?? 2,
    ...(opts.readErrorToleranceMs !== undefined ? { readErrorToleranceMs: opts.readErrorToleranceMs } : {}),
    log: createLogger('test', () => undefined),
  });
}

async function invocation(signal = new AbortController().signal): Promise<ToolInvocation> {
  const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
  const tool = catalog.all().find((t) => t.name === 'echo');
  if (!tool) throw new Error('no echo tool in the default catalog');
  return { callId: '0123456789abcdef0123', tool, arguments: { message: 'hi' }, agentId: 'ops-bot', decisionId: 'd-1', policyRevision: 'r-1', signal };
}

describe('the Kubernetes Job runner', () => {
  it('keeps following its Job through transient API errors', async () => {
    const api = kubeDouble((n) => [apiError(503), networkError(), apiError(429)][n - 1] ?? FAILED);
    const outcome = await runner(api).run(await invocation());
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(api.reads).toBe(4);
    expect(api.deleted).toEqual([]);
  });

  it('gives up on an unreadable Job after its tolerance, and deletes the Job before answering', async () => {
    const api = kubeDouble(() => apiError(503));
    const outcome = await runner(api, { readErrorToleranceMs: 50 }).run(await invocation());
    expect(outcome).toMatchObject({ status: 'unavailable', error: expect.stringMatching(/lost track of Job tg-0123456789abcdef0123-/) });
    expect(api.reads).toBeGreaterThan(1);
    expect(api.deleted).toEqual([expect.stringMatching(/^tg-0123456789abcdef0123-[0-9a-f]{4}$/)]);
  });

  it('does not wait on an error that will not pass (the Job is gone)', async () => {
    const api = kubeDouble(() => apiError(404));
    const outcome = await runner(api).run(await invocation());
    expect(outcome).toMatchObject({ status: 'unavailable' });
    expect(api.reads).toBe(1);
  });

  it('listens for cancellation once per run, and stops listening when the run ends', async () => {
    const controller = new AbortController();
    const listeners: number[] = [];
    const api = kubeDouble((n) => {
      listeners.push(getEventListeners(controller.signal, 'abort').length);
      return n < 20 ? RUNNING : FAILED;
    });
    await runner(api).run(await invocation(controller.signal));
    expect(Math.max(...listeners)).toBe(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a cancellation wakes the run at once and deletes the Job', async () => {
    const controller = new AbortController();
    const api = kubeDouble((n) => {
      if (n === 1) setTimeout(() => controller.abort(), 10);
      return RUNNING;
    });
    const started = Date.now();
    // A poll interval far longer than the test: only the abort listener can end the pause in time.
    const outcome = await runner(api, { pollIntervalMs: 60_000 }).run(await invocation(controller.signal));
    expect(outcome).toMatchObject({ status: 'cancelled' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(api.deleted).toHaveLength(1);
  });
});
