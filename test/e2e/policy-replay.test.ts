import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplayReport } from '../../src/authz/replay/replay.js';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { CAP_AT_5, policiesWith } from './policy-bundles.js';
import { buildSeedBundle, SEED_REVISION, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/** Arguments hidden from the logs; the catalog's flat fields (namespace, desired_replicas) stay. */
const MASK = `package system.log

mask contains "/input/attributes/request/http/body"
mask contains "/input/parsed_body"
mask contains "/input/tool_call/arguments"
`;

/**
 * Replay: 10 000 decisions recorded through Envoy in toolgate's decision log (OPA-format console events that
 * keep the input, masked), re-evaluated against a candidate. The flips are exactly the calls the candidate
 * decides differently, grouped by tool, agent and direction; the exit status gates a rollout.
 */
describe('policy replay', () => {
  let stack: Stack;
  let work: string;
  let candidate: string;
  let active: string;
  /** Every scale call: decision id -> replicas asked and the answer. */
  const scaled = new Map<string, { replicas: number; status: number }>();
  let total = 0;
  /**
   * Allowed calls whose upstream (the echo stand-in) reset the connection under load: decided and logged, but
   * Envoy answers 503 without the decision id. Retried; counted so the expected flips stay exact.
   */
  const resetAfterAllow = { flipping: 0, other: 0 };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-replay-'));
    active = join(work, 'active.tar.gz');
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: await policiesWith(work, 'active', { 'system/log/mask.rego': MASK }), outFile: active, revision: 'rev-active', entrypoints: ['agent/authz', 'system/log/mask'] });
    candidate = await buildSeedBundle(work, 'rev-candidate', await policiesWith(work, 'candidate', { 'agent/authz/cap.rego': CAP_AT_5 }));
    stack = await startStack({
      engine: 'embedded',
      bundle: { file: active },
      editAuthzConfig: (c) => {
        writeFileSync(join(work, 'opa.yaml'), toYaml({ decision_logs: { console: true } }));
        c.opa_config = join(work, 'opa.yaml');
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('records 10 000 decisions through Envoy', async () => {
    const jwts = { 'ops-bot': await stack.jwtFor('ops-bot'), 'other-bot': await stack.jwtFor('other-bot') };
    let next = 0;
    const N = Number(process.env.TOOLGATE_REPLAY_DECISIONS ?? 10_000);
    const worker = async (): Promise<void> => {
      while (next < N) {
        const n = next++;
        const agent = n % 7 === 0 ? 'other-bot' : 'ops-bot';
        const replicas = (n % 10) + 1;
        const [tool, args] = n % 3 === 0 ? ['k8s_get_deployment', { namespace: 'staging', name: `app-${n % 50}` }] : ['k8s_scale_deployment', { namespace: 'staging', name: `app-${n % 50}`, replicas }];
        let res = await stack.call(`/v1/tools/${tool}`, args, { jwt: jwts[agent] });
        while (res.status === 503 && /upstream connect error|connection termination/.test(res.text)) {
          if (tool === 'k8s_scale_deployment' && replicas > 5) resetAfterAllow.flipping++;
          else resetAfterAllow.other++;
          total++;
          res = await stack.call(`/v1/tools/${tool}`, args, { jwt: jwts[agent] });
        }
        if (res.status !== 200 && res.status !== 403) throw new Error(`unexpected ${res.status}: ${res.text}`);
        if (tool === 'k8s_scale_deployment') scaled.set(res.headers['x-toolgate-decision-id'] as string, { replicas, status: res.status });
        total++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(total - resetAfterAllow.flipping - resetAfterAllow.other).toBe(N);
    expect(N).toBeGreaterThanOrEqual(process.env.TOOLGATE_REPLAY_DECISIONS ? 1 : 10_000);
  }, 300_000);

  it('lists exactly the flips, grouped by tool, agent and direction, reports throughput and exits 1', async () => {
    await stack.stopAuthz(); // flushes the log
    const cli = join(REPO_ROOT, 'dist', 'src', 'cli', 'policy-replay.js');
    const result = await run(process.execPath, [cli, '--bundle', candidate, '--decisions', stack.authz.logPath, '--json'], { maxBuffer: 64 * 1024 * 1024 }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as ReplayReport;
    expect(report.replayed).toBe(total);
    expect(report.replayedMasked).toBe(total);
    // ops-bot's allowed scale calls above 5 replicas become denials; other-bot (denied by both) gets a new reason.
    const toDeny = [...scaled].filter(([, c]) => c.replicas > 5 && c.status === 200).map(([id]) => id);
    const newReason = [...scaled].filter(([, c]) => c.replicas > 5 && c.status === 403).map(([id]) => id);
    expect(toDeny.length).toBeGreaterThan(total / 5);
    expect(newReason.length).toBeGreaterThan(0);
    const allowToDeny = toDeny.length + resetAfterAllow.flipping;
    expect(report.flips).toBe(allowToDeny + newReason.length);
    expect(report.byDirection).toEqual({ allow_to_deny: allowToDeny, reasons_changed: newReason.length });
    expect(report.groups.map((g) => [g.tool, g.agent, g.direction, g.count])).toEqual([
      ['k8s_scale_deployment', 'ops-bot', 'allow_to_deny', allowToDeny],
      ['k8s_scale_deployment', 'other-bot', 'reasons_changed', newReason.length],
    ]);
    for (const e of report.groups[0]?.examples ?? []) {
      if (resetAfterAllow.flipping === 0) expect(toDeny).toContain(e.decisionId);
      expect(e.recorded).toMatchObject({ allowed: true, revision: 'rev-active' });
      expect(e.candidate).toMatchObject({ allowed: false, reasons: expect.arrayContaining(['scaling above 5 replicas needs a change request']) });
    }
    for (const e of report.groups[1]?.examples ?? []) expect(newReason).toContain(e.decisionId);
    expect(report.decisionsPerSecond).toBeGreaterThan(0);
    process.stderr.write(`[replay] upstream resets retried: ${JSON.stringify(resetAfterAllow)}\n`);
    process.stderr.write(`[replay] ${report.replayed} decisions in ${report.seconds.total} s: ${report.decisionsPerSecond} decisions/s\n`);

    // The human-readable report, and a candidate that changes nothing exits 0.
    const textRun = await run(process.execPath, [cli, '--bundle', candidate, '--decisions', stack.authz.logPath]).catch((err: { stdout: string }) => err);
    expect(textRun.stdout).toMatch(/decisions would change: allow_to_deny \d+/);
    expect(textRun.stdout).toMatch(/allow_to_deny {2}tool k8s_scale_deployment {2}agent ops-bot: \d+/);
    expect(textRun.stdout).toMatch(/throughput: \d+ decisions\/s/);
    const same = await run(process.execPath, [cli, '--bundle', active, '--decisions', stack.authz.logPath]);
    expect(same.stdout).toMatch(/no decision would change/);
    expect(SEED_REVISION).toBeTruthy();
  }, 120_000);
});
