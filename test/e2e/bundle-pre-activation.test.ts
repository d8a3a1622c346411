import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBundleServer, type TestBundleServer } from './bundle-server.js';
import { CONFLICT_ALWAYS, CONFLICT_ON_BOOM, metricValue, policiesWith, waitFor, answeredRevision } from './policy-bundles.js';
import { buildSeedBundle, startStack, type Stack } from './stack.js';

/**
 * A bundle must decide before it decides anything for real: one that loads but fails on evaluation (or
 * contradicts its own examples) is refused like a corrupt one, never cached as last good, and decisions go
 * on with the last good bundle, also across a restart with the bundle server down.
 */
describe('bundles are evaluated before activation', () => {
  let stack: Stack;
  let server: TestBundleServer;
  let good: Buffer;
  let failing: Buffer;
  let contradicting: Buffer;
  let boom: Buffer;

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'toolgate-preact-'));
    good = await readFile(await buildSeedBundle(work, 'rev-good'));
    failing = await readFile(await buildSeedBundle(work, 'rev-failing', await policiesWith(work, 'failing', { 'agent/authz/conflict.rego': CONFLICT_ALWAYS })));
    // Examples shipped in the bundle's data: this bundle's authorized_agents no longer include ops-bot.
    const examples = { toolgate: { examples: [{ name: 'ops-bot reads staging', input: { agent_id: 'ops-bot', action: 'get', resource: 'deployment', namespace: 'staging' }, allowed: true }] } };
    contradicting = await readFile(
      await buildSeedBundle(work, 'rev-contradicting', await policiesWith(work, 'contradicting', { 'data.json': JSON.stringify({ authorized_agents: ['someone-else'] }), 'toolgate/examples/data.json': JSON.stringify(examples.toolgate.examples) })),
    );
    boom = await readFile(await buildSeedBundle(work, 'rev-boom', await policiesWith(work, 'boom', { 'agent/authz/conflict.rego': CONFLICT_ON_BOOM })));
    server = await startBundleServer();
    server.setBundle(good);
    stack = await startStack({ engine: 'embedded', bundle: { url: server.url, cacheDir: join(work, 'cache') } });
  });
  afterAll(async () => {
    await stack?.stop();
    await server?.close();
  });

  it('refuses a bundle that fails on every evaluation, and keeps deciding with the last good one', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const before = await metricValue(stack.authzHttpPort, 'toolgate_policy_bundle_rejections_total{reason="evaluation"}');
    server.setBundle(failing);
    await waitFor(async () => (await metricValue(stack.authzHttpPort, 'toolgate_policy_bundle_rejections_total{reason="evaluation"}')) > before, 15_000, 'evaluation rejection counted');
    for (let i = 0; i < 5; i++) {
      const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt });
      expect(res.status).toBe(200);
      expect(answeredRevision(res)).toBe('rev-good');
    }
    const ready = (await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/readyz`)).json()) as { status: { bundle: { revision: string; lastError?: string } } };
    expect(ready.status.bundle.revision).toBe('rev-good');
    expect(ready.status.bundle.lastError).toMatch(/rev-failing fails on .*conflict/);
  });

  it('after a restart, with the server still serving the failing bundle and then down, starts from the last good one', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    await stack.restartAuthz();
    let res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt });
    expect([res.status, answeredRevision(res)]).toEqual([200, 'rev-good']);
    server.setFailing(503);
    try {
      await stack.restartAuthz();
      res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt });
      expect([res.status, answeredRevision(res)]).toEqual([200, 'rev-good']);
    } finally {
      server.setFailing(undefined);
    }
  });

  it('refuses a bundle whose decisions contradict the examples it ships', async () => {
    const before = await metricValue(stack.authzHttpPort, 'toolgate_policy_bundle_rejections_total{reason="evaluation"}');
    server.setBundle(contradicting);
    await waitFor(async () => (await metricValue(stack.authzHttpPort, 'toolgate_policy_bundle_rejections_total{reason="evaluation"}')) > before, 15_000, 'example rejection counted');
    const ready = (await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/readyz`)).json()) as { status: { bundle: { revision: string; lastError?: string } } };
    expect(ready.status.bundle.lastError).toMatch(/rev-contradicting decides ops-bot reads staging denied, its example expects allowed/);
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt: await stack.jwtFor('ops-bot') });
    expect([res.status, answeredRevision(res)]).toEqual([200, 'rev-good']);
  });

  it('a policy_error names the revision that failed, in the answer and the decision log, and no server file path', async () => {
    server.setBundle(boom);
    const jwt = await stack.jwtFor('ops-bot');
    await waitFor(async () => answeredRevision(await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt })) === 'rev-boom', 15_000, 'rev-boom active');
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'boom' }, { jwt });
    expect(res.status).toBe(500);
    expect(res.json.error).toMatchObject({ code: 'policy_error', policy_revision: 'rev-boom' });
    expect(res.json.error.message).toMatch(/conflict/);
    expect(res.text).not.toMatch(/\/(tmp|work|home|root)\//);
    const id = res.headers['x-toolgate-decision-id'] as string;
    await waitFor(async () => (await readFile(stack.authz.logPath, 'utf8')).includes(id), 5000, 'decision logged');
    const line = (await readFile(stack.authz.logPath, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"msg":"decision"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.decision_id === id);
    expect(line).toMatchObject({ result: 'error', code: 'policy_error', policy_revision: 'rev-boom' });
  });
});
