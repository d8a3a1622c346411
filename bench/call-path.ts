/**
 * Added latency of the call path for a no-op tool (`echo`), measured through the real Envoy and authz
 * server, side by side in one run:
 *   baseline   Envoy -> authz -> echo upstream (authorization only, nothing executed)
 *   local      Envoy -> authz -> executor -> local sandbox runner (one bubblewrap process per call, started
 *              when the call arrives: the cold path)
 *   local-pooled  the same, each call taking a sandbox started ahead of it (runner.pool, echo: 2)
 *   kubernetes Envoy -> authz -> executor -> Job runner against a real kube-apiserver (the control path:
 *              Job create, watch, result, with the node stand-in running the pod command locally)
 * Sequential calls (concurrency 1), --gap-ms apart (default 250: an agent's tool calls are separated by its
 * model's turn, and a pool is refilled in that time; 0: back to back, where the pool cannot keep up and calls
 * fall back to sandboxes still starting), after a warm-up; configurations are interleaved in rounds so drift
 * affects all alike. --configs picks configurations (default all four; the Kubernetes one needs the
 * kube-apiserver and etcd). Writes bench/results/call-path.{json,md}.
 *
 *   npm run bench:call-path [-- --calls 200] [--gap-ms 250] [--configs baseline,local,local-pooled,kubernetes]
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadToolCatalogFile } from '../src/catalog/tool-catalog.js';
import { executorRbac, toolRbac } from '../src/catalog/rbac-manifests.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { startStack, type Stack } from '../test/e2e/stack.js';
import { exitOnSignals } from '../test/support/managed-process.js';
import { applyAll } from '../test/support/kube/apply.js';
import { startControlPlane } from '../test/support/kube/control-plane.js';
import { startNodeStandIn } from '../test/support/kube/node-standin.js';
import { summarize, type Summary } from './stats.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 200);
const GAP_MS = arg('gap-ms', 250);
const ROUNDS = 4;
const CONFIGS = (() => {
  const i = process.argv.indexOf('--configs');
  const all = ['baseline', 'local', 'local-pooled', 'kubernetes'];
  const picked = i === -1 ? all : (process.argv[i + 1] ?? '').split(',');
  const unknown = picked.filter((c) => !all.includes(c));
  if (unknown.length > 0 || !picked.includes('baseline')) throw new Error(`--configs: baseline plus any of ${all.join(', ')} (not ${unknown.join(', ')})`);
  return new Set(picked);
})();

async function timeCall(stack: Stack, jwt: string): Promise<number> {
  const t0 = performance.now();
  const res = await stack.call('/v1/tools/echo', { message: 'ping' }, { jwt });
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`call failed: ${res.status} ${res.text}`);
  return ms;
}

/** The Kubernetes configuration: namespace, RBAC and the node stand-in on the control plane, then its stack. */
async function startKubernetesStack(plane: Awaited<ReturnType<typeof startControlPlane>>, started: (node: Awaited<ReturnType<typeof startNodeStandIn>>) => void): Promise<Stack> {
  const admin = plane.admin();
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'toolgate-exec' } } });
  const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
  const rbac = { executionNamespace: 'toolgate-exec', targetNamespaces: [], executorServiceAccount: 'toolgate-executor', defaultToolServiceAccount: 'toolgate-tool-default' };
  await applyAll(admin, [...executorRbac(rbac), ...toolRbac(catalog, rbac)]);
  started(await startNodeStandIn({ controlPlane: plane, namespaces: ['toolgate-exec'] }));
  const kubeconfig = await plane.kubeconfigForServiceAccount('toolgate-exec', 'toolgate-executor');
  return startStack({ engine: 'embedded', executor: 'kubernetes', kube: { kubeconfig, namespace: 'toolgate-exec' } });
}

async function main(): Promise<void> {
  exitOnSignals();
  const plane = CONFIGS.has('kubernetes') ? await startControlPlane() : undefined;
  const stacks: Record<string, Stack> = {};
  let node: Awaited<ReturnType<typeof startNodeStandIn>> | undefined;
  try {
    stacks.baseline = await startStack({ engine: 'embedded' });
    if (CONFIGS.has('local')) stacks.local = await startStack({ engine: 'embedded', executor: 'local' });
    if (CONFIGS.has('local-pooled')) stacks['local-pooled'] = await startStack({ engine: 'embedded', executor: 'local', sandboxPool: { size: 0, tools: { echo: 2 } } });
    if (plane) stacks.kubernetes = await startKubernetesStack(plane, (n) => (node = n));

    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(stacks).map((name) => [name, []]));
    const jwts: Record<string, string> = {};
    for (const [name, stack] of Object.entries(stacks)) {
      jwts[name] = await stack.jwtFor('ops-bot');
      for (let i = 0; i < 10; i++) await timeCall(stack, jwts[name] as string); // warm-up
    }
    const perRound = Math.ceil(CALLS / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, stack] of Object.entries(stacks)) {
        for (let i = 0; i < perRound; i++) {
          if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
          (samples[name] as number[]).push(await timeCall(stack, jwts[name] as string));
        }
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${name}: ${perRound} calls\n`);
      }
    }

    const results: Record<string, Summary> = {};
    for (const [name, s] of Object.entries(samples)) results[name] = summarize(s);
    const base = results.baseline as Summary;
    const added = (r: Summary): { p50: number; p99: number } => ({ p50: round(r.p50 - base.p50), p99: round(r.p99 - base.p99) });
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      calls_per_configuration: perRound * ROUNDS,
      gap_ms: GAP_MS,
      latency_ms: results,
      added_over_baseline_ms: Object.fromEntries(Object.entries(results).filter(([name]) => name !== 'baseline').map(([name, r]) => [name, added(r)])),
    };
    const lines = [
      `# Call path: added latency of a no-op tool (${report.calls_per_configuration} sequential calls per configuration, ${GAP_MS} ms apart)`,
      '',
      '| configuration | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p99 ms |',
      '|---|---|---|---|---|---|---|',
      ...Object.entries(results).map(([name, r]) => {
        const a = name === 'baseline' ? { p50: 0, p99: 0 } : added(r);
        return `| ${name} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.mean} | ${a.p50} | ${a.p99} |`;
      }),
      '',
      'baseline: Envoy + authz (embedded engine) + echo upstream; local: + executor + bubblewrap sandbox started per call;',
      'local-pooled: the same, each call taking a sandbox started ahead of it (runner.pool: echo 2);',
      'kubernetes: + executor + one Job per call against a real kube-apiserver (pod command run by the node stand-in).',
    ];
    const outDir = join(REPO_ROOT, 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'call-path.json'), JSON.stringify(report, null, 2));
    await writeFile(join(outDir, 'call-path.md'), `${lines.join('\n')}\n`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const s of Object.values(stacks)) await s.stop();
    await node?.stop();
    await plane?.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
