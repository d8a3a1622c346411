/**
 * Latency of the call path for a no-op tool (`echo`), through the real Envoy and authz server, side by side:
 *   baseline       Envoy -> authz -> echo upstream (authorization only, nothing executed)
 *   local          Envoy -> authz -> executor -> local sandbox runner (one bubblewrap process per call, started
 *                  when the call arrives: the cold path)
 *   local-pooled   the same, each call taking a sandbox started ahead of it (runner.pool, echo: 2)
 *   mcp            the local gateway again, the same tool, over MCP: a JSON-RPC tools/call POSTed to /mcp in one
 *                  session (Streamable HTTP, SSE answer), as an MCP client sends it (needs local)
 *   kubernetes-job Envoy -> authz -> executor -> one Job per call on a real node (kubelet, containerd, runc:
 *                  test/support/kube/real-node.ts), the runner image built from this checkout
 *   kubernetes-warm  the same node, echo opted into a warm pool (execution.warm_pool): a pre-started pod is
 *                  claimed per call, then replaced
 * Sequential calls (concurrency 1) after a warm-up; configurations interleaved in rounds so drift affects all
 * alike. Warm calls are paced: each waits (outside the timed part) until the pool has a ready pod, so the
 * figure is the latency of a warm call; the sustained rate a pool can serve is bounded by pod start-up and is
 * reported as the pool's refill rate. The real node is started only for the kubernetes-* configurations.
 * Writes bench/results/call-path.{json,md}.
 *
 *   npm run bench:call-path [-- --calls 200] [--cold-calls 200] [--pool 4] [--gap-ms 250]
 *                           [--configs baseline,local,local-pooled,mcp,kubernetes-job,kubernetes-warm]
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { startStack, type Stack } from '../test/e2e/stack.js';

import { EXEC_NS, startExecutionCluster, type ExecutionCluster } from '../test/support/kube/execution-cluster.js';
import { summarize, type Summary } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 200);
const COLD_CALLS = arg('cold-calls', CALLS);
const POOL = arg('pool', 4);
/** Idle time before each call (as between an agent's calls); 0: back to back. */
const GAP_MS = arg('gap-ms', 250);
const ROUNDS = 4;
const ALL_CONFIGS = ['baseline', 'local', 'local-pooled', 'mcp', 'kubernetes-job', 'kubernetes-warm'] as const;
type ConfigName = (typeof ALL_CONFIGS)[number];
/** --configs a,b: run only these (default: all); baseline always runs, every figure is relative to it. */
const CONFIGS: ReadonlySet<ConfigName> = (() => {
  const i = process.argv.indexOf('--configs');
  if (i === -1) return new Set(ALL_CONFIGS);
  const picked = (process.argv[i + 1] ?? '').split(',');
  const unknown = picked.filter((c) => !(ALL_CONFIGS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`--configs: any of ${ALL_CONFIGS.join(', ')} (not ${unknown.map((c) => JSON.stringify(c)).join(', ')})`);
  if (picked.includes('mcp') && !picked.includes('local')) throw new Error('--configs: mcp needs local (the same gateway, over REST)');
  return new Set<ConfigName>(['baseline', ...(picked as ConfigName[])]);
})();

/** One configuration as the measuring loop sees it. */
interface Timed {
  /** One call, timed. */
  time: () => Promise<number>;
  calls: number;
  warmups: number;
  /** Waits (untimed) until a call can be served as this configuration means it; returns the wait in ms. */
  pace?: () => Promise<number>;
}

async function timed(send: () => Promise<{ status: number; text: string }>, ok: (res: { status: number; text: string }) => boolean): Promise<number> {
  const t0 = performance.now();
  const res = await send();
  const ms = performance.now() - t0;
  if (!ok(res)) throw new Error(`call failed: ${res.status} ${res.text}`);
  return ms;
}

async function restCaller(stack: Stack): Promise<() => Promise<number>> {
  const jwt = await stack.jwtFor('ops-bot');
  return () => timed(() => stack.call('/v1/tools/echo', { message: 'ping' }, { jwt }), (res) => res.status === 200);
}

const MCP_HEADERS = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

/** One MCP session: initialize once, then every call is one tools/call POST with a fresh id. */
async function mcpCaller(stack: Stack): Promise<() => Promise<number>> {
  const jwt = await stack.jwtFor('ops-bot', { aud: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
  const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } };
  const res = await stack.call('/mcp', init, { jwt, headers: MCP_HEADERS });
  const sessionId = res.headers['mcp-session-id'];
  if (res.status !== 200 || typeof sessionId !== 'string') throw new Error(`MCP initialize failed: ${res.status} ${res.text}`);
  const headers = { ...MCP_HEADERS, 'mcp-session-id': sessionId };
  await stack.call('/mcp', { jsonrpc: '2.0', method: 'notifications/initialized' }, { jwt, headers });
  let nextId = 1;
  return () => {
    const message = { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'ping' } } };
    return timed(() => stack.call('/mcp', message, { jwt, headers }), (r) => r.status === 200 && r.text.includes('"structuredContent"'));
  };
}

/**
 * The default catalog with echo's requests at 250m (a pool of 4 and the Jobs fit the 2-CPU node together),
 * and a warm pool of `size` pods for echo when size > 0.
 */
async function catalogForEcho(size: number): Promise<string> {
  const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: { name: string; execution: Record<string, unknown> }[] };
  for (const t of doc.tools) if (t.name === 'echo') Object.assign(t.execution, { resources: { cpu: '250m', memory: '128Mi' }, ...(size > 0 ? { warm_pool: { size } } : {}) });
  const path = join(await mkdtemp(join(benchRunDir('call-path'), 'catalog-')), 'catalog.yaml');
  await writeFile(path, toYaml(doc));
  return path;
}

/** Waits until the bench-warm executor's pool has a ready pod; returns how long that took. */
function warmPodWaiter(cluster: ExecutionCluster): () => Promise<number> {
  const core = cluster.admin.makeApiClient(CoreV1Api);
  const labelSelector = 'app.kubernetes.io/component=warm-pod,toolgate.dev/executor=bench-warm,toolgate.dev/pool-state=ready';
  return async () => {
    const t0 = performance.now();
    while ((await core.listNamespacedPod({ namespace: EXEC_NS, labelSelector })).items.length === 0) await new Promise((r) => setTimeout(r, 20));
    return performance.now() - t0;
  };
}

async function main(): Promise<void> {
  benchRunDir('call-path');
  const stacks: Partial<Record<ConfigName, Stack>> = {};
  const configs: Partial<Record<ConfigName, Timed>> = {};
  let cluster: ExecutionCluster | undefined;
  try {
    const local = { engine: 'embedded', executor: 'local' } as const;
    stacks.baseline = await startStack({ engine: 'embedded' });
    if (CONFIGS.has('local')) stacks.local = await startStack(local);
    if (CONFIGS.has('local-pooled')) stacks['local-pooled'] = await startStack({ ...local, sandboxPool: { size: 0, tools: { echo: 2 } } });
    if (CONFIGS.has('kubernetes-job') || CONFIGS.has('kubernetes-warm')) {
      const warmCatalog = await catalogForEcho(POOL);
      cluster = await startExecutionCluster(warmCatalog);
      const kube = { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, ...cluster.runner };
      if (CONFIGS.has('kubernetes-job')) stacks['kubernetes-job'] = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { ...kube, instance: 'bench-job' }, catalogPath: await catalogForEcho(0) });
      if (CONFIGS.has('kubernetes-warm')) stacks['kubernetes-warm'] = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { ...kube, instance: 'bench-warm' }, catalogPath: warmCatalog });
    }

    for (const [name, stack] of Object.entries(stacks) as [ConfigName, Stack][]) {
      configs[name] = { time: await restCaller(stack), calls: name === 'kubernetes-job' ? COLD_CALLS : CALLS, warmups: name === 'kubernetes-job' ? 3 : 10 };
    }
    // `mcp` is the local stack again, over /mcp: the difference to `local` is what MCP adds.
    if (CONFIGS.has('mcp') && stacks.local) configs.mcp = { time: await mcpCaller(stacks.local), calls: CALLS, warmups: 10 };
    if (configs['kubernetes-warm'] && cluster) configs['kubernetes-warm'].pace = warmPodWaiter(cluster);

    const entries = (Object.keys(configs) as ConfigName[]).sort((a, b) => ALL_CONFIGS.indexOf(a) - ALL_CONFIGS.indexOf(b)).map((name) => [name, configs[name] as Timed] as const);
    const samples: Partial<Record<ConfigName, number[]>> = {};
    const pacedWaitsMs: number[] = [];
    for (const [name, c] of entries) {
      samples[name] = [];
      for (let i = 0; i < c.warmups; i++) {
        await c.pace?.();
        await c.time();
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, c] of entries) {
        const perRound = Math.ceil(c.calls / ROUNDS);
        for (let i = 0; i < perRound; i++) {
          if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
          if (c.pace) pacedWaitsMs.push(await c.pace());
          samples[name]?.push(await c.time());
        }
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${name}: ${perRound} calls\n`);
      }
    }

    // Where a warm call's time goes and how many were slow, from the warm executor's own histograms.
    const warmBreakdownMs = stacks['kubernetes-warm'] ? await executorBreakdown(stacks['kubernetes-warm']) : undefined;
    const results: Partial<Record<ConfigName, Summary>> = {};
    for (const [name, s] of Object.entries(samples) as [ConfigName, number[]][]) results[name] = summarize(s);
    const difference = (a: Summary, b: Summary): { p50: number; p99: number } => ({ p50: round(a.p50 - b.p50), p99: round(a.p99 - b.p99) });
    const base = results.baseline as Summary;
    const warm = results['kubernetes-warm'] ? { warm_pool_size: POOL, warm_pacing_wait_ms: summarize(pacedWaitsMs), warm_executor_breakdown: warmBreakdownMs } : undefined;
    // Issue 14's target: MCP adds at most 5 ms p50 over REST, same gateway, same tool, local runner.
    const mcpOverRest = results.mcp && results.local ? difference(results.mcp, results.local) : undefined;
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      gap_ms: GAP_MS,
      calls: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length])),
      ...warm,
      latency_ms: results,
      added_over_baseline_ms: Object.fromEntries(Object.entries(results).filter(([k]) => k !== 'baseline').map(([k, r]) => [k, difference(r, base)])),
      ...(mcpOverRest ? { mcp_over_rest_ms: mcpOverRest } : {}),
    };
    const legend: Record<ConfigName, string> = {
      baseline: 'Envoy + authz (embedded engine) + echo upstream',
      local: '+ executor + bubblewrap sandbox started per call',
      'local-pooled': 'each call taking a sandbox started ahead of it (runner.pool: echo 2)',
      mcp: 'the local configuration over MCP (tools/call POSTed to /mcp in one session, SSE answer)',
      'kubernetes-job': '+ executor + one Job per call on a real node (kubelet, containerd, runc)',
      'kubernetes-warm': warm
        ? `the same node, echo on a warm pool of ${POOL} single-use pods (each call paced until a pod is ready; the wait, not timed: p50 ${warm.warm_pacing_wait_ms.p50} ms, p90 ${warm.warm_pacing_wait_ms.p90} ms)`
        : '',
    };
    const lines = [
      `# Call path: a no-op tool through Envoy (sequential calls, ${GAP_MS} ms apart; ${JSON.stringify(report.calls)})`,
      '',
      '| configuration | calls | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p99 ms |',
      '|---|---|---|---|---|---|---|---|',
      ...Object.entries(results).map(([name, r]) => {
        const a = name === 'baseline' ? { p50: 0, p99: 0 } : difference(r, base);
        return `| ${name} | ${r.n} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.mean} | ${a.p50} | ${a.p99} |`;
      }),
      '',
      ...entries.map(([name]) => `- ${name}: ${legend[name]}`),
      ...(mcpOverRest ? ['', `MCP over REST (mcp - local): p50 ${mcpOverRest.p50} ms, p99 ${mcpOverRest.p99} ms.`] : []),
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

/**
 * Where a warm call's time goes, from the executor's own histograms: means of its call duration and of the
 * warm phases (claiming: lock Job created -> the pod has its call; running: -> result), how many of each took
 * over 0.5 s and 1 s (the tail), and how many calls of the pooled tool fell back to a Job (a pod was scheduled).
 */
async function executorBreakdown(stack: Stack): Promise<Record<string, number> | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text().catch(() => '');
  if (!text) return undefined;
  const sum = (re: RegExp): number => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  // Series of `name_suffix` whose labels include every one of `labels` (in any order).
  const series = (name: string, suffix: string, ...labels: string[]): RegExp => new RegExp(`^${name}_${suffix}\\{${labels.map((l) => `(?=[^}]*${l})`).join('')}[^}]*\\} (\\S+)$`, 'gm');
  const mean = (name: string, filter: string): number => {
    const count = sum(series(name, 'count', filter));
    return count ? round((sum(series(name, 'sum', filter)) / count) * 1000) : NaN;
  };
  const over = (name: string, filter: string, le: string): number => sum(series(name, 'count', filter)) - sum(series(name, 'bucket', filter, `le="${le}"`));
  const phase = 'toolgate_executor_call_phase_seconds';
  return {
    call_mean: mean('toolgate_executor_call_duration_seconds', 'outcome="succeeded"'),
    claiming_mean: mean(phase, 'phase="claiming"'),
    running_mean: mean(phase, 'phase="running"'),
    claiming_over_500ms: over(phase, 'phase="claiming"', '0.5'),
    claiming_over_1s: over(phase, 'phase="claiming"', '1'),
    running_over_500ms: over(phase, 'phase="running"', '0.5'),
    running_over_1s: over(phase, 'phase="running"', '1'),
    ran_as_job: sum(series(phase, 'count', 'phase="queued"')),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
