import type { V1Job, V1Secret } from '@kubernetes/client-node';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { KubernetesJobRunner, type KubeApis } from '../../../src/executor/runners/kubernetes/kubernetes-job-runner.js';
import { ResultTokens } from '../../../src/executor/runners/kubernetes/job-identity.js';
import { JobResultStore } from '../../../src/executor/runners/kubernetes/result-store.js';
import { argumentsDigest } from '../../../src/shared/digest.js';
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
function kubeDouble(read: (attempt: number) => V1Job | Error, opts: { existing?: V1Job; secrets?: Map<string, V1Secret> } = {}): KubeApis & { reads: number; deleted: string[]; secrets: Map<string, V1Secret> } {
  const secrets = opts.secrets ?? new Map<string, V1Secret>();
  type Double = KubeApis & { reads: number; deleted: string[]; secrets: Map<string, V1Secret> };
  const double: Double = {
    reads: 0,
    deleted: [] as string[],
    secrets,
    batch: {
      createNamespacedJob: async ({ body }) => {
        if (opts.existing) throw Object.assign(new Error('HTTP 409'), { code: 409, body: '{"message":"jobs.batch already exists"}' });
        return { ...body, metadata: { ...body.metadata, uid: 'uid-1' } };
      },
      readNamespacedJob: async () => {
        const answer: V1Job | Error = double.reads === 0 && opts.existing ? opts.existing : read(double.reads + (opts.existing ? 0 : 1));
        double.reads++;
        if (answer instanceof Error) throw answer;
        return { ...answer, metadata: { uid: 'uid-1', ...answer.metadata } };
      },
      deleteNamespacedJob: async ({ name }) => {
        double.deleted.push(name);
        return {};
      },
      listNamespacedJob: async () => ({ items: [] }),
      patchNamespacedJob: async () => {
        throw new Error('not used by these tests');
      },
    } satisfies KubeApis['batch'],
    core: {
      createNamespacedSecret: async ({ body }) => {
        if (secrets.has(body.metadata?.name as string)) throw Object.assign(new Error('HTTP 409'), { code: 409, body: '{"message":"secrets already exists"}' });
        secrets.set(body.metadata?.name as string, body);
        return body;
      },
      readNamespacedSecret: async ({ name }) => {
        const found = secrets.get(name);
        if (!found) throw Object.assign(new Error('HTTP 404'), { code: 404 });
        return found;
      },
      listNamespacedPod: async () => ({ items: [] }),
    } satisfies KubeApis['core'],
  };
  return double;
}

const SHARED_KEY = Buffer.alloc(32, 3);

function runner(api: KubeApis, opts: { pollIntervalMs?: number; readErrorToleranceMs?: number; shared?: boolean; secretGraceMs?: number } = {}): KubernetesJobRunner {
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
    ...(opts.shared ? { sharedKey: SHARED_KEY, idempotencyWindowSeconds: 600, attestationWindowSeconds: 25 } : {}),
    ...(opts.readErrorToleranceMs !== undefined ? { readErrorToleranceMs: opts.readErrorToleranceMs } : {}),
    ...(opts.secretGraceMs !== undefined ? { secretGraceMs: opts.secretGraceMs } : {}),
    log: createLogger('test', () => undefined),
  });
}

async function invocation(signal = new AbortController().signal, extra: Partial<ToolInvocation> = {}): Promise<ToolInvocation> {
  const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
  const tool = catalog.all().find((t) => t.name === 'echo');
  if (!tool) throw new Error('no echo tool in the default catalog');
  return { callId: '0123456789abcdef0123', tool, arguments: { message: 'hi' }, agentId: 'ops-bot', decisionId: 'd-1', policyRevision: 'r-1', signal, ...extra };
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
    expect(outcome).toMatchObject({ status: 'unavailable', error: expect.stringMatching(/lost track of Job tg-0123456789abcdef0123/) });
    expect(api.reads).toBeGreaterThan(1);
    expect(api.deleted).toEqual(['tg-0123456789abcdef0123']);
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

  it('a cancellation deletes the Job at once, without waiting for the Job read in flight', async () => {
    const controller = new AbortController();
    const api = kubeDouble(() => RUNNING);
    let deletedWhileReading = false;
    const read = api.batch.readNamespacedJob;
    // The second read hangs for 3 s (a busy apiserver); the call is cancelled 10 ms into it.
    api.batch.readNamespacedJob = async (req) => {
      if (api.reads === 1) {
        setTimeout(() => controller.abort(), 10);
        await new Promise((r) => setTimeout(r, 3_000));
        deletedWhileReading = api.deleted.length === 1;
      }
      return read(req);
    };
    const outcome = await runner(api, { pollIntervalMs: 1 }).run(await invocation(controller.signal));
    expect(outcome).toMatchObject({ status: 'cancelled' });
    expect(deletedWhileReading).toBe(true);
    expect(api.deleted).toHaveLength(1);
  });

  it('with an Idempotency-Key, attaches to the Job another replica started and answers its stored result, never running it again', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-retry' });
    const existing: V1Job = { metadata: { name: 'tg-0123456789abcdef0123', uid: 'uid-1', annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments) } }, status: { active: 1 } };
    const COMPLETE: V1Job = { status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } };
    const api = kubeDouble((n) => (n < 3 ? RUNNING : COMPLETE), { existing });
    // Another replica received the Job's result and stored it with the Job.
    await new JobResultStore(api.core, 'toolgate-exec').save('0123456789abcdef0123', { name: 'tg-0123456789abcdef0123', uid: 'uid-1' }, { call_id: '0123456789abcdef0123', status: 'ok', result: { message: 'hi' } });
    const outcome = await runner(api, { shared: true }).run(inv);
    expect(outcome).toMatchObject({ status: 'succeeded', result: { message: 'hi' } });
    expect(api.deleted).toEqual([]);
  });

  it('a follower of a Job whose creator stopped before writing its call Secret writes that Secret (the token the Job\'s, the arguments the call\'s), so the pod can start', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-retry' });
    const ref = { name: 'tg-0123456789abcdef0123', uid: 'uid-1' };
    const existing: V1Job = { metadata: { ...ref, labels: { 'toolgate.dev/executor': 'executor-2' }, annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments) } }, status: { active: 1 } };
    const COMPLETE: V1Job = { status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } };
    const api = kubeDouble((n) => (n < 3 ? RUNNING : COMPLETE), { existing });
    await new JobResultStore(api.core, 'toolgate-exec').save(inv.callId, ref, { call_id: inv.callId, status: 'ok', result: { message: 'hi' } });
    expect(api.secrets.has(ref.name)).toBe(false);
    expect(await runner(api, { shared: true }).run(inv)).toMatchObject({ status: 'succeeded', result: { message: 'hi' } });
    const secret = api.secrets.get(ref.name);
    expect(secret?.stringData).toEqual({ token: new ResultTokens(SHARED_KEY).tokenFor(ref), params: JSON.stringify(inv.arguments) });
    expect(secret?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Job', uid: 'uid-1' });
    expect(secret?.metadata?.labels?.['toolgate.dev/executor']).toBe('executor-2');
    expect(api.deleted).toEqual([]);
  });

  it('a creator whose call Secret a follower wrote first goes on with it (the same Secret); not with an earlier Job\'s', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-first' });
    const COMPLETE: V1Job = { status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } };
    const api = kubeDouble((n) => (n < 2 ? RUNNING : COMPLETE));
    const ref = { name: 'tg-0123456789abcdef0123', uid: 'uid-1' };
    api.secrets.set(ref.name, { metadata: { name: ref.name, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: ref.name, uid: 'uid-1' }] } });
    await new JobResultStore(api.core, 'toolgate-exec').save(inv.callId, ref, { call_id: inv.callId, status: 'ok', result: { message: 'hi' } });
    expect(await runner(api, { shared: true }).run(inv)).toMatchObject({ status: 'succeeded', result: { message: 'hi' } });
    expect(api.deleted).toEqual([]);
    // One an earlier Job of this name left (deleted, its Secret not yet collected) is not this call's: as before.
    const stale = kubeDouble(() => COMPLETE);
    stale.secrets.set(ref.name, { metadata: { name: ref.name, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: ref.name, uid: 'uid-0' }] } });
    expect(await runner(stale, { shared: true }).run(inv)).toMatchObject({ status: 'unavailable' });
    expect(stale.deleted).toEqual([ref.name]);
    // Without shared tokens no follower writes it: a Secret already there is not this call's.
    const alone = kubeDouble(() => COMPLETE);
    alone.secrets.set(ref.name, { metadata: { name: ref.name } });
    expect(await runner(alone).run(inv)).toMatchObject({ status: 'unavailable' });
    expect(alone.deleted).toEqual([ref.name]);
  });

  it('a followed Job whose arguments only its stopped creator could serve, still without its Secret after the grace, is deleted and the caller told to retry', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-retry', arguments: { message: 'x'.repeat(40_000) } });
    const existing: V1Job = { metadata: { name: 'tg-0123456789abcdef0123', uid: 'uid-1', annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments) } }, status: { active: 1 } };
    const api = kubeDouble(() => RUNNING, { existing });
    expect(await runner(api, { shared: true, secretGraceMs: 30 }).run(inv)).toMatchObject({ status: 'unavailable', error: expect.stringContaining('send the call again') });
    expect(api.deleted).toEqual(['tg-0123456789abcdef0123']);
    expect(api.secrets.size).toBe(0);
    // Its creator wrote the Secret in time: followed as usual.
    const written = kubeDouble(() => RUNNING, { existing });
    written.secrets.set('tg-0123456789abcdef0123', { metadata: { name: 'tg-0123456789abcdef0123' } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(await runner(written, { shared: true, secretGraceMs: 30 }).run({ ...inv, signal: controller.signal })).toMatchObject({ status: 'cancelled' });
    expect(written.deleted).toEqual([]);
  });

  it('refuses, without running, the same decision twice (a replayed attestation) and other arguments under the same key', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-first' });
    const job = (digest: string): V1Job => ({ metadata: { uid: 'uid-1', annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': digest } }, status: { active: 1 } });
    expect(await runner(kubeDouble(() => RUNNING, { existing: job(argumentsDigest(inv.arguments)) }), { shared: true }).run(inv)).toMatchObject({ status: 'refused', code: 'attestation_used' });
    // Without an Idempotency-Key the Job is named by the decision: AlreadyExists means a replay.
    const plain = await invocation(undefined, { decisionId: 'd-other' });
    expect(await runner(kubeDouble(() => RUNNING, { existing: job(argumentsDigest(plain.arguments)) }), { shared: true }).run(plain)).toMatchObject({ status: 'refused', code: 'attestation_used' });
    const retry = await invocation(undefined, { idempotent: true, decisionId: 'd-retry' });
    expect(await runner(kubeDouble(() => RUNNING, { existing: job('sha256:other') }), { shared: true }).run(retry)).toMatchObject({ status: 'refused', code: 'idempotency_conflict' });
  });

  it('a follower whose client goes away stops waiting but leaves the Job to the replica that started it', async () => {
    const controller = new AbortController();
    const inv = await invocation(controller.signal, { idempotent: true, decisionId: 'd-retry' });
    const existing: V1Job = { metadata: { uid: 'uid-1', annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments) } }, status: { active: 1 } };
    const api = kubeDouble((n) => {
      if (n === 2) controller.abort();
      return RUNNING;
    }, { existing });
    expect(await runner(api, { shared: true }).run(inv)).toMatchObject({ status: 'cancelled' });
    expect(api.deleted).toEqual([]);
  });

  it('keeps a finished Job (the call\'s lock and result) for the idempotency window, and any Job for an attestation\'s life', async () => {
    const created: V1Job[] = [];
    const api = kubeDouble(() => FAILED);
    const create = api.batch.createNamespacedJob;
    api.batch.createNamespacedJob = async (req) => {
      created.push(req.body);
      return create(req);
    };
    await runner(api, { shared: true }).run(await invocation(undefined, { idempotent: true }));
    await runner(api, { shared: true }).run(await invocation(undefined, { callId: 'fedcba9876543210fedc' }));
    expect(created.map((j) => [j.metadata?.labels?.['toolgate.dev/identity'], j.spec?.ttlSecondsAfterFinished])).toEqual([
      ['idempotency-key', 600],
      ['decision', 30],
    ]);
  });

  it('a warm call takes the same lock as a cold one: the call\'s Job, created held (parallelism 0, so no pod), before any pod is claimed', async () => {
    const created: V1Job[] = [];
    const api = kubeDouble(() => RUNNING);
    const create = api.batch.createNamespacedJob;
    api.batch.createNamespacedJob = async (req) => {
      created.push(req.body);
      return create(req);
    };
    const inv = await invocation(undefined, { idempotent: true });
    const lock = await runner(api, { shared: true }).hold(inv, 'tg-w0123456789abcdef012');
    if (!('held' in lock)) throw new Error(`not held: ${JSON.stringify(lock)}`);
    expect(created[0]?.metadata?.name).toBe('tg-0123456789abcdef0123');
    expect(created[0]?.spec?.parallelism).toBe(0);
    expect(created[0]?.spec?.activeDeadlineSeconds).toBe(inv.tool.execution.timeout_seconds + 5);
    expect(created[0]?.metadata?.annotations?.['toolgate.dev/warm-pod']).toBe('tg-w0123456789abcdef012');
    // The warm pod's result token is the held Job's: any replica can check it against that Job.
    expect(new ResultTokens(SHARED_KEY).matches(lock.held.ref, lock.held.token)).toBe(true);
    // Another replica holding the same call (or a cold run of it) meets AlreadyExists.
    expect(await runner(kubeDouble(() => RUNNING, { existing: created[0] as V1Job }), { shared: true }).hold(inv, 'tg-w1111111111111111111')).toEqual({ exists: true });
  });

  it('a follower of a call held for another replica\'s warm pod answers the result stored with its Job (a held Job never completes)', async () => {
    const inv = await invocation(undefined, { idempotent: true, decisionId: 'd-retry' });
    const held: V1Job = {
      metadata: { name: 'tg-0123456789abcdef0123', uid: 'uid-1', annotations: { 'toolgate.dev/decision-id': 'd-first', 'toolgate.dev/arguments-digest': argumentsDigest(inv.arguments), 'toolgate.dev/warm-pod': 'tg-w0123456789abcdef012' } },
      spec: { parallelism: 0, template: {} },
      status: {},
    };
    const api = kubeDouble(() => held, { existing: held });
    await new JobResultStore(api.core, 'toolgate-exec').save('0123456789abcdef0123', { name: 'tg-0123456789abcdef0123', uid: 'uid-1' }, { call_id: '0123456789abcdef0123', status: 'ok', result: { message: 'warm' } });
    expect(await runner(api, { shared: true }).run(inv)).toMatchObject({ status: 'succeeded', result: { message: 'warm' } });
    // Past the held Job's deadline with nothing stored: the warm run ended without a result (a timeout).
    const expired: V1Job = { ...held, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] } };
    expect(await runner(kubeDouble(() => expired, { existing: held }), { shared: true }).run(inv)).toMatchObject({ status: 'timeout' });
  });

  it('after a warm run, followers see what happened: a failure without a result is stored as the call\'s error; a timeout deletes the lock', async () => {
    const api = kubeDouble(() => RUNNING);
    const r = runner(api, { shared: true });
    const inv = await invocation(undefined, { idempotent: true });
    const lock = await r.hold(inv, 'tg-w0123456789abcdef012');
    if (!('held' in lock)) throw new Error('not held');
    await r.settleHeld(inv, lock.held, { status: 'failed', exitCode: 137, error: 'the tool was OOM-killed', durationMs: 5 });
    expect(await r.storedResultOf(inv.callId, lock.held)).toMatchObject({ status: 'error', error: { message: 'the tool was OOM-killed' } });
    expect(api.deleted).toEqual([]);
    await r.settleHeld(inv, lock.held, { status: 'timeout', durationMs: 5 });
    expect(api.deleted).toEqual(['tg-0123456789abcdef0123']);
  });

  it('a held call no warm pod took is released to run as its Job (parallelism 1); a held Job that cannot be released is deleted', async () => {
    const patches: unknown[] = [];
    const api = kubeDouble(() => FAILED);
    api.batch.patchNamespacedJob = async (req) => {
      patches.push(req.body);
      return {};
    };
    const r = runner(api, { shared: true });
    const inv = await invocation();
    const lock = await r.hold(inv, 'tg-w0123456789abcdef012');
    if (!('held' in lock)) throw new Error('not held');
    expect(await r.runHeld(inv, lock.held)).toMatchObject({ status: 'failed' });
    expect(patches[0]).toContainEqual({ op: 'replace', path: '/spec/parallelism', value: 1 });
    // Its pod gets the call's Secret, with the held Job's token.
    expect(api.secrets.get('tg-0123456789abcdef0123')?.stringData?.token).toBe(lock.held.token);

    const refused = kubeDouble(() => RUNNING);
    refused.batch.patchNamespacedJob = async () => {
      throw apiError(403);
    };
    const r2 = runner(refused, { shared: true });
    const lock2 = await r2.hold(inv, 'tg-w0123456789abcdef012');
    if (!('held' in lock2)) throw new Error('not held');
    expect(await r2.runHeld(inv, lock2.held)).toMatchObject({ status: 'unavailable' });
    expect(refused.deleted).toEqual(['tg-0123456789abcdef0123']);
  });

  it('a result token is bound to one Job: its name and its uid', () => {
    const tokens = new ResultTokens(SHARED_KEY);
    const token = tokens.tokenFor({ name: 'tg-a', uid: 'u1' });
    expect(tokens.matches({ name: 'tg-a', uid: 'u1' }, token)).toBe(true);
    expect(tokens.matches({ name: 'tg-a', uid: 'u2' }, token)).toBe(false);
    expect(tokens.matches({ name: 'tg-b', uid: 'u1' }, token)).toBe(false);
    expect(new ResultTokens(Buffer.alloc(32, 4)).matches({ name: 'tg-a', uid: 'u1' }, token)).toBe(false);
  });
});
