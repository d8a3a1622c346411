import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAP_AT_5, metricValue, policiesWith, waitFor, answeredRevision } from './policy-bundles.js';
import { buildSeedBundle, SEED_REVISION, startStack, type Stack } from './stack.js';

/**
 * Shadow policy under live traffic: the candidate is evaluated beside the active bundle on every decision,
 * reports exactly the calls it would decide differently, and changes no answer.
 */
describe('shadow policy', () => {
  let stack: Stack;

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'toolgate-shadow-'));
    const candidate = await buildSeedBundle(work, 'rev-candidate', await policiesWith(work, 'candidate', { 'agent/authz/cap.rego': CAP_AT_5 }));
    stack = await startStack({
      engine: 'embedded',
      editAuthzConfig: (c) => {
        c.policy.shadow = { file: candidate, poll_interval_ms: 200 };
      },
    });
    await waitFor(async () => {
      const ready = (await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/readyz`)).json()) as { status: { shadow?: { revision?: string } } };
      return ready.status.shadow?.revision === 'rev-candidate';
    }, 15_000, 'shadow bundle active');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('reports exactly the diverging calls, with both results, and the answers agents get are unchanged', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const sent: { id: string; replicas: number | undefined; status: number; revision: string | undefined }[] = [];
    const traffic: [string, Record<string, unknown>][] = [];
    for (let replicas = 1; replicas <= 10; replicas++) traffic.push(['k8s_scale_deployment', { namespace: 'staging', name: 'api', replicas }]);
    for (let i = 0; i < 5; i++) traffic.push(['k8s_get_deployment', { namespace: 'staging', name: `app-${i}` }]);
    traffic.push(['k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 2 }]);
    for (const [tool, args] of traffic) {
      const res = await stack.call(`/v1/tools/${tool}`, args, { jwt });
      const revision = answeredRevision(res);
      sent.push({ id: res.headers['x-toolgate-decision-id'] as string, replicas: args.replicas as number | undefined, status: res.status, revision });
    }
    // Answers: the active (seed) policy's, always: scaling up to 10 in staging allowed, production denied.
    expect(sent.map((s) => s.status)).toEqual([...Array(10).fill(200), ...Array(5).fill(200), 403]);
    expect(new Set(sent.map((s) => s.revision))).toEqual(new Set([SEED_REVISION]));

    const evaluations = (): Promise<number> =>
      Promise.all([metricValue(stack.authzHttpPort, 'toolgate_shadow_evaluations_total{outcome="agreed"}'), metricValue(stack.authzHttpPort, 'toolgate_shadow_evaluations_total{outcome="diverged"}')]).then(([a, d]) => a + d);
    await waitFor(async () => (await evaluations()) >= traffic.length, 10_000, 'shadow evaluations');
    expect(await evaluations()).toBe(traffic.length);

    const expected = sent.filter((s) => (s.replicas ?? 0) > 5 && s.status === 200).map((s) => s.id);
    expect(expected).toHaveLength(5);
    const divergences = (await readFile(stack.authz.logPath, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"msg":"shadow divergence"'))
      .map((l) => JSON.parse(l) as { decision_id: string; tool: string; direction: string; active: { allowed: boolean; revision: string }; candidate: { allowed: boolean; reasons: string[]; revision: string } });
    expect(new Set(divergences.map((d) => d.decision_id))).toEqual(new Set(expected));
    expect(divergences).toHaveLength(5);
    for (const d of divergences) {
      expect(d).toMatchObject({ tool: 'k8s_scale_deployment', direction: 'allow_to_deny', active: { allowed: true, revision: SEED_REVISION }, candidate: { allowed: false, revision: 'rev-candidate' } });
      expect(d.candidate.reasons).toContain('scaling above 5 replicas needs a change request');
    }
    expect(await metricValue(stack.authzHttpPort, 'toolgate_shadow_divergences_total{tool="k8s_scale_deployment",direction="allow_to_deny"}')).toBe(5);
  });
});
