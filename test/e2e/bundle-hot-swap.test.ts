import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBundleServer, type TestBundleServer } from './bundle-server.js';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';
import { answeredRevision } from './policy-bundles.js';

/**
 * Security teams change the served bundle while agents keep calling. No request may fail, and each decision
 * must be the one its reported revision makes: rev-a authorizes ops-bot (staging reads allowed), rev-b does
 * not (denied).
 */
describe('bundle hot swap under load', () => {
  let stack: Stack;
  let server: TestBundleServer;
  let revA: Buffer;
  let revB: Buffer;

  beforeAll(async () => {
    server = await startBundleServer();
    const tmp = (await import('node:os')).tmpdir();
    const work = await (await import('node:fs/promises')).mkdtemp(join(tmp, 'toolgate-swap-'));
    revA = await readFile(await buildSeedBundle(work, 'rev-a'));
    revB = await readFile(await buildSeedBundle(work, 'rev-b', await policiesWithData(work, 'policies-b', { authorized_agents: ['someone-else'] })));
    server.setBundle(revA);
    stack = await startStack({ engine: 'embedded', bundle: { url: server.url, cacheDir: join(work, 'cache') } });
  });
  afterAll(async () => {
    await stack?.stop();
    await server?.close();
  });

  it('swaps revisions while requests flow, with no failed request and every decision matching its revision', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const total = 600;
    const concurrency = 8;
    const seen: { status: number; revision: string | undefined }[] = [];
    let sent = 0;
    const swaps: [number, Buffer][] = [
      [150, revB],
      [300, revA],
      [450, revB],
    ];
    const worker = async (): Promise<void> => {
      while (sent < total) {
        const n = sent++;
        for (const [at, bytes] of swaps) if (n === at) server.setBundle(bytes);
        const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api-server' }, { jwt });
        const revision = answeredRevision(res);
        seen.push({ status: res.status, revision });
        // Pace the load so the run spans several poll intervals (0.2–0.4 s).
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));

    expect(seen).toHaveLength(total);
    const bad = seen.filter((s) => !((s.status === 200 && s.revision === 'rev-a') || (s.status === 403 && s.revision === 'rev-b')));
    expect(bad).toEqual([]);
    const byRevision = { a: seen.filter((s) => s.revision === 'rev-a').length, b: seen.filter((s) => s.revision === 'rev-b').length };
    expect(byRevision.a).toBeGreaterThan(0);
    expect(byRevision.b).toBeGreaterThan(0);
  });

  it('keeps the active bundle when the server serves a broken one, and reports it', async () => {
    server.setBundle(revA);
    const jwt = await stack.jwtFor('ops-bot');
    await waitFor(async () => (await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'x' }, { jwt })).status === 200);
    server.setBundle(Buffer.from('this is not a gzip tarball'));
    await new Promise((r) => setTimeout(r, 1500));
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'x' }, { jwt });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).echo.headers['x-toolgate-policy-revision']).toBe('rev-a');
    const ready = (await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/readyz`)).json()) as { status: { bundle: { revision: string; lastError?: string } } };
    expect(ready.status.bundle.revision).toBe('rev-a');
    expect(ready.status.bundle.lastError).toBeTruthy();
    const metrics = await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/metrics`)).text();
    expect(metrics).toMatch(/toolgate_policy_bundle_info\{revision="rev-a"\} 1/);
  });

  it('starts from the cached bundle when the bundle server is down', async () => {
    server.setFailing(503);
    try {
      await stack.restartAuthz();
      const jwt = await stack.jwtFor('ops-bot');
      const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'x' }, { jwt });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text).echo.headers['x-toolgate-policy-revision']).toBe('rev-a');
    } finally {
      server.setFailing(undefined);
    }
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}
