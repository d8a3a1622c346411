/**
 * Latency of the call path for a no-op tool (`echo`), through the real Envoy and authz server, side by side:
 *   baseline       Envoy -> authz -> echo upstream (authorization only, nothing executed)
 *   local          Envoy -> authz -> executor -> local sandbox runner (one bubblewrap process per call, started
 *                  when the call arrives: the cold path)
 *   local-pooled   the same, each call taking a sandbox started ahead of it (runner.pool, echo: 2)
 *   kubernetes-job Envoy -> authz -> executor -> one Job per call on a real node (kubelet, containerd, runc:
 *                  test/support/kube/real-node.ts), the runner image built from this checkout
 *   kubernetes-warm  the same node, echo opted into a warm pool (execution.warm_pool): a pre-started pod is
 *                  claimed per call, then replaced
 * Sequential calls (concurrency 1) after a warm-up; configurations interleaved in rounds so drift affects all
 * alike. Warm calls are paced: each waits (outside the timed part) until the pool has a ready pod, so the
 * figure is the latency of a warm call; the sustained rate a pool can serve is bounded by pod start-up and is
 * reported as the pool's refill rate. Writes bench/results/call-path.{json,md}.
 *
 *   npm run bench:call-path [-- --calls 200] [--cold-calls 200] [--pool 4] [--gap-ms 250] [--configs local,kubernetes-warm]
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { startStack, type Stack } from '../test/e2e/stack.js';
import { exitOnSignals } from '../test/support/managed-process.js';
import { EXEC_NS, startExecutionCluster, type ExecutionCluster } from '../test/support/kube/execution-cluster.js';
import { summarize, type Summary } from './stats.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 200);
const COLD_CALLS = arg('cold-calls', CALLS);
const POOL = arg('pool', 4);
/** Idle time before each call (as between an agent's calls); 0: back to back. */
const GAP_MS = arg('gap-ms', 250);
/** --configs baseline,kubernetes-warm: run only these (default: all). */
const CONFIGS = process.argv.includes('--configs') ? (process.argv[process.argv.indexOf('--configs') + 1] ?? '').split(',') : undefined;
const ROUNDS = 4;

async function timeCall(stack: Stack, jwt: string): Promise<number> {
  const t0 = performance.now();
  const res = await stack.call('/v1/tools/echo', { message: 'ping' }, { jwt });
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`call failed: ${res.status} ${res.text}`);
  return ms;
}

/**
 * The default catalog with echo's requests at 250m (a pool of 4 and the Jobs fit the 2-CPU node together),
 * and a warm pool of `size` pods for echo when size > 0.
 */
async function catalogForEcho(size: number): Promise<string> {
  const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: { name: string; execution: Record<string, unknown> }[] };
  for (const t of doc.tools) if (t.name === 'echo') Object.assign(t.execution, { resources: { cpu: '250m', memory: '128Mi' }, ...(size > 0 ? { warm_pool: { size } } : {}) });
  const path = join(await mkdtemp(join(tmpdir(), 'toolgate-bench-')), 'catalog.yaml');
  await writeFile(path, toYaml(doc));
  return path;
}

async function main(): Promise<void> {
  exitOnSignals();
  const stacks: Record<string, Stack> = {};
  let cluster: ExecutionCluster | undefined;
  try {
    const warmCatalog = await catalogForEcho(POOL);
    const coldCatalog = await catalogForEcho(0);
    cluster = await startExecutionCluster(warmCatalog);
    const kube = { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, ...cluster.runner };
    const wanted = (name: string): boolean => name === 'baseline' || !CONFIGS || CONFIGS.includes(name);
    stacks.baseline = await startStack({ engine: 'embedded' });
    if (wanted('local')) stacks.local = await startStack({ engine: 'embedded', executor: 'local' });
    if (wanted('local-pooled')) stacks['local-pooled'] = await startStack({ engine: 'embedded', executor: 'local', sandboxPool: { size: 0, tools: { echo: 2 } } });
    if (wanted('kubernetes-job')) stacks['kubernetes-job'] = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { ...kube, instance: 'bench-job' }, catalogPath: coldCatalog });
    if (wanted('kubernetes-warm')) stacks['kubernetes-warm'] = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { ...kube, instance: 'bench-warm' }, catalogPath: warmCatalog });

    const core = cluster.admin.makeApiClient(CoreV1Api);
    const readyWarm = async (): Promise<number> =>
      (await core.listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'app.kubernetes.io/component=warm-pod,toolgate.dev/executor=bench-warm,toolgate.dev/pool-state=ready' })).items.length;
    const untilWarm = async (): Promise<number> => {
      const t0 = performance.now();
      while ((await readyWarm()) === 0) await new Promise((r) => setTimeout(r, 20));
      return performance.now() - t0;
    };
    const pacedWaitsMs: number[] = [];

    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(stacks).map((k) => [k, []]));
    const jwts: Record<string, string> = {};
    for (const [name, stack] of Object.entries(stacks)) {
      jwts[name] = await stack.jwtFor('ops-bot');
      const warmups = name === 'kubernetes-job' ? 3 : 10;
      for (let i = 0; i < warmups; i++) {
        if (name === 'kubernetes-warm') await untilWarm();
        await timeCall(stack, jwts[name] as string);
      }
    }
    const perRound = (name: string): number => Math.ceil((name === 'kubernetes-job' ? COLD_CALLS : CALLS) / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, stack] of Object.entries(stacks)) {
        for (let i = 0; i < perRound(name); i++) {
          if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
          if (name === 'kubernetes-warm') pacedWaitsMs.push(await untilWarm());
          (samples[name] as number[]).push(await timeCall(stack, jwts[name] as string));
        }
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${name}: ${perRound(name)} calls\n`);
      }
    }

    // Where a warm call's time goes, from the warm executor's own histograms (means): claim -> result is the pod's
    // part; the rest of the executor's call duration is the claim (label compare-and-swap) and bookkeeping.
    const warmBreakdownMs = stacks['kubernetes-warm'] ? await executorMeans(stacks['kubernetes-warm']) : undefined;
    const results: Record<string, Summary> = {};
    for (const [name, s] of Object.entries(samples)) results[name] = summarize(s);
    const base = results.baseline as Summary;
    const added = (r: Summary): { p50: number; p99: number } => ({ p50: round(r.p50 - base.p50), p99: round(r.p99 - base.p99) });
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      calls: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length])),
      warm_pool_size: POOL,
      warm_pacing_wait_ms: summarize(pacedWaitsMs),
      warm_executor_means_ms: warmBreakdownMs,
      latency_ms: results,
      added_over_baseline_ms: Object.fromEntries(Object.entries(results).filter(([k]) => k !== 'baseline').map(([k, r]) => [k, added(r)])),
    };
    const lines = [
      `# Call path: a no-op tool through Envoy (sequential calls; ${JSON.stringify(report.calls)})`,
      '',
      '| configuration | calls | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p99 ms |',
      '|---|---|---|---|---|---|---|---|',
      ...Object.entries(results).map(([name, r]) => {
        const a = name === 'baseline' ? { p50: 0, p99: 0 } : added(r);
        return `| ${name} | ${r.n} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.mean} | ${a.p50} | ${a.p99} |`;
      }),
      '',
      `calls ${GAP_MS} ms apart. baseline: Envoy + authz (embedded engine) + echo upstream; local: + executor + bubblewrap`,
      'sandbox started per call; local-pooled: each call taking a sandbox started ahead of it (runner.pool: echo 2);',
      'kubernetes-job: + executor + one Job per call on a real node (kubelet, containerd, runc); kubernetes-warm: the',
      `same node, echo on a warm pool of ${POOL} single-use pods (each call paced until a pod is ready; the wait, not timed:`,
      `p50 ${report.warm_pacing_wait_ms.p50} ms, p90 ${report.warm_pacing_wait_ms.p90} ms).`,
    ];
    const outDir = join(REPO_ROOT, 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'call-path.json'), JSON.stringify(report, null, 2));
    await writeFile(join(outDir, 'call-path.md'), `${lines.join('\n')}\n`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const s of Object.values(stacks)) await s.stop();
    await cluster?.stop();
  }
}

/** Means of the executor's call duration and of its warm pods' claim -> result phase, from its /metrics. */
async function executorMeans(stack: Stack): Promise<{ call: number; claim_to_result: number } | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text().catch(() => '');
  const sum = (re: RegExp): number => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  const mean = (name: string, filter: string): number => {
    const count = sum(new RegExp(`^${name}_count\\{[^}]*${filter}[^}]*\\} (\\S+)$`, 'gm'));
    return count ? round((sum(new RegExp(`^${name}_sum\\{[^}]*${filter}[^}]*\\} (\\S+)$`, 'gm')) / count) * 1000) : NaN;
  };
  if (!text) return undefined;
  return { call: mean('toolgate_executor_call_duration_seconds', 'outcome="succeeded"'), claim_to_result: mean('toolgate_executor_call_phase_seconds', 'phase="running"') };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
