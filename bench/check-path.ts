/**
 * The check path, side by side with the OPA Envoy plugin, in one run on this machine: the same Envoy in front
 * of the same trivial upstream in four configurations and a reference one (bench/lib/configurations.ts),
 * driven by h2load over HTTP/1.1 with the same load, configurations alternated round by round so drift
 * affects all alike.
 *
 * For each: requests/s at saturation (fixed concurrency), p50/p90/p99 at a fixed rate, CPU seconds per 1000
 * checks and memory of the authorization processes. Then how the check cost grows with the policy data
 * (authorized agents) and with the request body, and what tracing costs on the check path.
 * Writes bench/results/check-path.{json,md}. Every request must answer 200: anything else fails the run.
 *
 * Latency is also reported as the front Envoy measured the check itself (its access log's `authz_us`), and
 * at a sweep of other fixed rates (--sweep-rates), because on a small VM the added latency depends on how
 * idle the processes are between requests.
 *
 * `--shadow-only` measures only what a shadow policy costs (bench/results/check-path-shadow.{json,md}).
 * `--history` measures only what input.history costs (bench/results/check-path-history.{json,md}): one bundle
 * that reads it, with history off (history.read: never), from the in-process store, and from a local Redis.
 *
 *   npm run bench:check-path [-- --rounds 3 --clients 16 --requests 20000 --rate 500 --seconds 10 --sweep-rates 100,500,1000 --envoy-concurrency 1 --quick --main-only]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { ensureDevCredentials, signAgentJwt, type DevCredentials } from '../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { ensureEnvoy, ensureOpa, ensureOpaEnvoyPlugin } from '../src/toolchain/install.js';
import { stopAll } from '../test/support/managed-process.js';
import { startCollector } from '../test/support/otel-collector.js';
import { CONFIG_LABELS, DECISION, startConfig, startUpstream, type Binaries, type Bundles, type ConfigName, type EnvoyWorkers, type RunningConfig } from './lib/configurations.js';
import { accessLogEnd, authzRoundTripsUs } from './lib/access-log.js';
import { bundlesFor, historyBundleFor } from './lib/bench-bundles.js';
import { startRedis } from '../test/support/redis.js';
import { h2load, type LoadResult } from './lib/h2load.js';
import { usageOf, type Usage } from './lib/process-usage.js';
import { summarize, type Summary } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  // A typo must stop the run here, not reach h2load or Envoy as NaN half an hour in.
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} takes a positive number (got ${process.argv[i + 1] ?? 'nothing'})`);
  return value;
};
const QUICK = flag('quick');
// Only the shadow policy's cost (toolgate embedded without and with a shadow bundle): no OPA Envoy plugin needed.
const SHADOW_ONLY = flag('shadow-only');
// Only the configurations side by side (no tracing, no growth): the inner loop when tuning.
const MAIN_ONLY = flag('main-only');
// Only what input.history costs: the same history-reading bundle without it, in-process, and with a local Redis.
const HISTORY_ONLY = flag('history');
const ROUNDS = arg('rounds', QUICK ? 1 : 3);
const CLIENTS = arg('clients', 16);
const SAT_REQUESTS = arg('requests', QUICK ? 5000 : 20_000);
const RATE = arg('rate', 200);
// One connection at the fixed rate: h2load starts its clients' timers together, so several clients send in
// synchronized bursts that measure queueing, not the check. One client at a moderate rate never queues.
const RATE_CLIENTS = arg('rate-clients', 1);
const SECONDS = arg('seconds', QUICK ? 4 : 10);
// Further fixed rates, each run for SWEEP_SECONDS per round and configuration ("" for none).
const SWEEP_RATES = (() => {
  const i = process.argv.indexOf('--sweep-rates');
  const text = i === -1 ? (QUICK ? '' : '100,500,1000') : (process.argv[i + 1] ?? '');
  const rates = text.split(',').filter((x) => x.trim() !== '').map(Number);
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`--sweep-rates takes positive numbers separated by commas (got ${text})`);
  return rates;
})();
const SWEEP_SECONDS = 5;
// Envoy's access log flush interval (test/support/envoy-process.ts) plus a margin.
const ACCESS_LOG_FLUSH_MS = 700;
const MAIN_AGENTS = 10;
// Envoy as deployed (one worker per hardware thread) unless pinned. With one worker, the front Envoy's
// thread is what saturates first in every configuration, and the ratio measures the proxy more than the
// authorization server.
const ENVOY_WORKERS: EnvoyWorkers = process.argv.includes('--envoy-concurrency') ? Math.round(arg('envoy-concurrency', 1)) : 'default';
const ENVOY_WORKERS_TEXT = ENVOY_WORKERS === 'default' ? `Envoy's default (${availableParallelism()} on this machine)` : String(ENVOY_WORKERS);

interface Measured {
  rps: number[];
  latency: number[];
  cpuPer1000: number[];
  envoyCpuPer1000: number[];
  usage: Usage | undefined;
  non2xx: number;
  /** Each check's round trip as Envoy measured it, at the main fixed rate (µs). */
  authzUs: number[];
  /** Latencies at the sweep rates, by rate. */
  sweep: Map<number, number[]>;
}

const emptyMeasured = (): Measured => ({ rps: [], latency: [], cpuPer1000: [], envoyCpuPer1000: [], usage: undefined, non2xx: 0, authzUs: [], sweep: new Map() });

async function main(): Promise<void> {
  const dir = benchRunDir('check-path');
  const [, opa, opaEnvoyPlugin] = await Promise.all([ensureEnvoy(), ensureOpa(), SHADOW_ONLY || HISTORY_ONLY ? '' : process.env.OPA_ENVOY_PLUGIN ?? ensureOpaEnvoyPlugin().catch((err: unknown) => {
    throw new Error(`could not build the OPA Envoy plugin with go install (${err instanceof Error ? err.message : String(err)}); where the Go module proxy does not serve it, build it from its repository and set OPA_ENVOY_PLUGIN (bench/README.md)`);
  })]);
  const bins: Binaries = { opa, opaEnvoyPlugin };
  const creds = await ensureDevCredentials(join(dir, 'creds'));
  const jwt = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 4 * 3600 });
  const upstream = await startUpstream(dir, ENVOY_WORKERS);
  const bodies = await writeBodies(dir);
  const ctx = { dir, creds, upstreamPort: upstream.port, bins, envoyWorkers: ENVOY_WORKERS };
  log(`work dir ${dir}; Envoy workers: ${ENVOY_WORKERS_TEXT}; h2load --h1, ${CLIENTS} clients, ${SAT_REQUESTS} requests at saturation, ${RATE} req/s for ${SECONDS} s at fixed rate, ${ROUNDS} rounds`);
  if (HISTORY_ONLY) {
    await runHistoryOnly(ctx, jwt, bodies.small);
    await upstream.proc.stop();
    return;
  }
  if (SHADOW_ONLY) {
    const shadow = await measureShadow(ctx, await bundlesFor(dir, bins.opa, MAIN_AGENTS), jwt, bodies.small);
    await upstream.proc.stop();
    const md = shadowMarkdown(shadow);
    const outDir = join(REPO_ROOT, 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'check-path-shadow.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rounds: ROUNDS, shadow }, null, 2));
    await writeFile(join(outDir, 'check-path-shadow.md'), md);
    process.stdout.write(md);
    if (shadow.off.non_2xx + shadow.on.non_2xx > 0) throw new Error('requests did not answer 200 in the shadow measurement');
    return;
  }

  // 1. The configurations side by side, alternated.
  const mainBundles = await bundlesFor(dir, bins.opa, MAIN_AGENTS);
  // (e) is a reference, not a contender: the same hop to a server that does no work.
  const names: ConfigName[] = ['a', 'b', 'c', 'd', 'e'];
  const configs = new Map<ConfigName, RunningConfig>();
  for (const n of names) configs.set(n, await startConfig(n, { ...ctx, tag: 'main', bundles: mainBundles }));
  const measured = new Map<ConfigName, Measured>(names.map((n) => [n, emptyMeasured()]));
  for (const c of configs.values()) await warmUp(c, jwt, bodies.small);
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length] as ConfigName);
    for (const n of order) {
      const c = configs.get(n) as RunningConfig;
      const m = measured.get(n) as Measured;
      const before = c.authzPids.length ? usageOf(c.authzPids) : undefined;
      const envoyBefore = usageOf([c.envoyPid]).cpuSeconds;
      const sat = await load(c, jwt, bodies.small, { requests: SAT_REQUESTS }, `${n}-sat-${round}`);
      const after = c.authzPids.length ? usageOf(c.authzPids) : undefined;
      m.envoyCpuPer1000.push(((usageOf([c.envoyPid]).cpuSeconds - envoyBefore) / sat.requests) * 1000);
      m.rps.push(sat.rps);
      if (before && after) m.cpuPer1000.push(((after.cpuSeconds - before.cpuSeconds) / sat.requests) * 1000);
      const logFrom = await accessLogEnd(c.accessLogPath);
      const fixed = await load(c, jwt, bodies.small, { rate: RATE, seconds: SECONDS }, `${n}-rate-${round}`);
      m.latency.push(...fixed.latenciesMs);
      m.usage = after;
      m.non2xx += nonOk(sat) + nonOk(fixed);
      if (n !== 'a') {
        await sleep(ACCESS_LOG_FLUSH_MS);
        m.authzUs.push(...(await authzRoundTripsUs(c.accessLogPath, logFrom)));
      }
      for (const rate of SWEEP_RATES) {
        const r = await load(c, jwt, bodies.small, { rate, seconds: SWEEP_SECONDS }, `${n}-sweep${rate}-${round}`);
        m.sweep.set(rate, [...(m.sweep.get(rate) ?? []), ...r.latenciesMs]);
        m.non2xx += nonOk(r);
      }
      log(`round ${round + 1}/${ROUNDS} ${n} (${CONFIG_LABELS[n]}): ${sat.rps.toFixed(0)} req/s saturated; p50 ${summarize(fixed.latenciesMs).p50} ms at ${RATE} req/s`);
    }
  }
  const main = Object.fromEntries(
    names.map((n) => {
      const m = measured.get(n) as Measured;
      return [n, { label: CONFIG_LABELS[n], rps: median(m.rps), rps_rounds: m.rps.map(round1), latency_ms: summarize(m.latency), authz_round_trip_us: m.authzUs.length ? summarize(m.authzUs) : null, latency_ms_by_rate: Object.fromEntries([...m.sweep].map(([rate, xs]) => [String(rate), summarize(xs)])), cpu_seconds_per_1000_checks: m.cpuPer1000.length ? round3(median(m.cpuPer1000)) : null, envoy_cpu_seconds_per_1000: round3(median(m.envoyCpuPer1000)), memory_mib: m.usage ?? null, non_2xx: m.non2xx }];
    }),
  ) as Record<ConfigName, MainResult>;
  for (const c of configs.values()) await c.stop();

  if (MAIN_ONLY) {
    await upstream.proc.stop();
    process.stdout.write(`${[mainTable(main), '', ...sweepTable(main)].join('\n')}\n`);
    return;
  }

  // 2. Tracing and metrics on the check path: toolgate embedded with tracing exported to a real collector.
  const tracing = await measureTracing(ctx, mainBundles, jwt, bodies.small);

  // 2b. Shadow policy: the same toolgate with a candidate bundle evaluated beside the active one.
  const shadow = await measureShadow(ctx, mainBundles, jwt, bodies.small);

  // 3. Growth with the policy data (authorized agents) and with the body, for the three authorizers.
  const dataGrowth: Record<string, Record<string, PointResult>> = {};
  for (const agents of [10, 1000, 100_000]) {
    const bundles = agents === MAIN_AGENTS ? mainBundles : await bundlesFor(dir, bins.opa, agents);
    dataGrowth[String(agents)] = await measurePoint(ctx, ['b', 'c', 'd'], bundles, `agents${agents}`, jwt, bodies.small, SAT_REQUESTS / 2);
  }
  const bodyGrowth: Record<string, Record<string, PointResult>> = {};
  for (const [label, file, requests] of [['1 KiB', bodies.kib1, SAT_REQUESTS / 2], ['64 KiB', bodies.kib64, SAT_REQUESTS / 10], ['1 MiB', bodies.mib1, 400]] as const) {
    bodyGrowth[label] = await measurePoint(ctx, ['a', 'b', 'c', 'd'], mainBundles, `body-${label.replace(' ', '')}`, jwt, file, requests);
  }
  await upstream.proc.stop();

  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    load: { tool: 'h2load --h1', envoy_workers: ENVOY_WORKERS, clients: CLIENTS, fixed_rate_clients: RATE_CLIENTS, saturation_requests: SAT_REQUESTS, fixed_rate_rps: RATE, fixed_rate_seconds: SECONDS, rounds: ROUNDS, policy: 'bench/policy/authz.rego', decision: DECISION, agents: MAIN_AGENTS },
    main,
    ratios_vs_d: {
      b: { rps: round3(main.b.rps / main.d.rps), p50: round3(main.b.latency_ms.p50 / main.d.latency_ms.p50), p99: round3(main.b.latency_ms.p99 / main.d.latency_ms.p99), cpu_per_1000: ratio(main.b.cpu_seconds_per_1000_checks, main.d.cpu_seconds_per_1000_checks) },
      c: { rps: round3(main.c.rps / main.d.rps), p50: round3(main.c.latency_ms.p50 / main.d.latency_ms.p50), p99: round3(main.c.latency_ms.p99 / main.d.latency_ms.p99), cpu_per_1000: ratio(main.c.cpu_seconds_per_1000_checks, main.d.cpu_seconds_per_1000_checks) },
    },
    added_over_a_ms: Object.fromEntries((['b', 'c', 'd', 'e'] as const).map((n) => [n, { p50: round3(main[n].latency_ms.p50 - main.a.latency_ms.p50), p90: round3(main[n].latency_ms.p90 - main.a.latency_ms.p90), p99: round3(main[n].latency_ms.p99 - main.a.latency_ms.p99) }])),
    tracing,
    shadow,
    data_growth: dataGrowth,
    body_growth: bodyGrowth,
  };
  const errors = [...Object.values(main).map((m) => m.non_2xx), tracing.off.non_2xx, tracing.on.non_2xx, shadow.off.non_2xx, shadow.on.non_2xx, ...[...Object.values(dataGrowth), ...Object.values(bodyGrowth)].flatMap((p) => Object.values(p).map((r) => r.non_2xx))].reduce((a, b) => a + b, 0);
  const md = `${markdown(report, errors)}\n${shadowMarkdown(shadow)}`;
  const outDir = join(REPO_ROOT, 'bench', 'results');
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'check-path.json'), JSON.stringify({ ...report, non_2xx_total: errors }, null, 2));
  await writeFile(join(outDir, 'check-path.md'), md);
  process.stdout.write(md);
  if (errors > 0) throw new Error(`${errors} requests did not answer 200: see the table`);
}

interface MainResult {
  label: string;
  rps: number;
  rps_rounds: number[];
  latency_ms: Summary;
  /** The check's round trip as the front Envoy measured it (access log `authz_us`), at the main fixed rate. */
  authz_round_trip_us: Summary | null;
  /** Latency at the sweep rates (req/s → summary). */
  latency_ms_by_rate: Record<string, Summary>;
  cpu_seconds_per_1000_checks: number | null;
  /** The front Envoy's CPU: the client side of each check (and what the authz server's answer costs it). */
  envoy_cpu_seconds_per_1000: number;
  memory_mib: Usage | null;
  non_2xx: number;
}

interface PointResult {
  rps: number;
  latency_ms: Summary;
  cpu_seconds_per_1000_checks: number | null;
  non_2xx: number;
}

type Ctx = { dir: string; creds: DevCredentials; upstreamPort: number; bins: Binaries };

/** One point of a growth curve: each configuration started fresh, warmed up, then one saturation run. */
async function measurePoint(ctx: Ctx, names: ConfigName[], bundles: Bundles, tag: string, jwt: string, body: string, requests: number): Promise<Record<string, PointResult>> {
  const out: Record<string, PointResult> = {};
  for (const n of names) {
    const c = await startConfig(n, { ...ctx, tag, bundles });
    try {
      await warmUp(c, jwt, body, Math.min(3000, requests / 2));
      const before = c.authzPids.length ? usageOf(c.authzPids) : undefined;
      const r = await load(c, jwt, body, { requests: Math.round(requests) }, `${n}-${tag}`);
      const after = c.authzPids.length ? usageOf(c.authzPids) : undefined;
      out[n] = { rps: round1(r.rps), latency_ms: summarize(r.latenciesMs), cpu_seconds_per_1000_checks: before && after ? round3(((after.cpuSeconds - before.cpuSeconds) / r.requests) * 1000) : null, non_2xx: nonOk(r) };
      log(`${tag} ${n}: ${r.rps.toFixed(0)} req/s, p50 ${out[n].latency_ms.p50} ms`);
    } finally {
      await c.stop();
    }
  }
  return out;
}

interface TracingVariant {
  rps: number;
  rps_rounds: number[];
  latency_ms: Summary;
  cpu_seconds_per_1000_checks: number;
  non_2xx: number;
}

interface TracingResult {
  off: TracingVariant;
  on: TracingVariant;
  rps_ratio_on_off: number;
  added_p50_ms: number;
  added_p99_ms: number;
  cpu_ratio_on_off: number | null;
}

/** Tracing off vs on (spans exported to a real collector), toolgate embedded, alternated. */
async function measureTracing(ctx: Ctx, bundles: Bundles, jwt: string, body: string): Promise<TracingResult> {
  const collector = await startCollector();
  try {
    return await compareOffOn('tracing', jwt, body, {
      off: () => startConfig('b', { ...ctx, tag: 'trace-off', bundles }),
      on: () => startConfig('b', { ...ctx, tag: 'trace-on', bundles, toolgateEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint } }),
    });
  } finally {
    await collector.stop();
  }
}

/**
 * Shadow off vs on, toolgate embedded, alternated: the candidate is the active bundle itself (a candidate of
 * the same size costs the same), evaluated after each answer on the same encoded input.
 */
async function measureShadow(ctx: Ctx, bundles: Bundles, jwt: string, body: string): Promise<TracingResult> {
  return compareOffOn('shadow', jwt, body, {
    off: () => startConfig('b', { ...ctx, tag: 'shadow-off', bundles }),
    on: () => startConfig('b', { ...ctx, tag: 'shadow-on', bundles, toolgatePolicy: { shadow: { file: bundles.wasm } } }),
  });
}

/**
 * One configuration with a feature off and on, alternated round by round (saturation, then the fixed rate),
 * each variant stopped at the end whatever happens.
 */
async function compareOffOn(what: string, jwt: string, body: string, start: Record<'off' | 'on', () => Promise<RunningConfig>>): Promise<TracingResult> {
  const variants: Partial<Record<'off' | 'on', RunningConfig>> = {};
  const m = { off: emptyMeasured(), on: emptyMeasured() };
  try {
    for (const key of ['off', 'on'] as const) variants[key] = await start[key]();
    for (const v of Object.values(variants)) await warmUp(v, jwt, body);
    for (let round = 0; round < ROUNDS; round++) {
      for (const key of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const c = variants[key] as RunningConfig;
        const before = usageOf(c.authzPids);
        const sat = await load(c, jwt, body, { requests: SAT_REQUESTS }, `${what}-${key}-sat-${round}`);
        const after = usageOf(c.authzPids);
        const fixed = await load(c, jwt, body, { rate: RATE, seconds: SECONDS }, `${what}-${key}-rate-${round}`);
        m[key].rps.push(sat.rps);
        m[key].cpuPer1000.push(((after.cpuSeconds - before.cpuSeconds) / sat.requests) * 1000);
        m[key].latency.push(...fixed.latenciesMs);
        m[key].non2xx += nonOk(sat) + nonOk(fixed);
        log(`${what} ${key} round ${round + 1}: ${sat.rps.toFixed(0)} req/s, ${(m[key].cpuPer1000.at(-1) ?? 0).toFixed(3)} CPU s / 1000`);
      }
    }
  } finally {
    for (const v of Object.values(variants)) await v.stop();
  }
  const variant = (x: Measured): TracingVariant => ({ rps: median(x.rps), rps_rounds: x.rps.map(round1), latency_ms: summarize(x.latency), cpu_seconds_per_1000_checks: round3(median(x.cpuPer1000)), non_2xx: x.non2xx });
  const [off, on] = [variant(m.off), variant(m.on)];
  return {
    off,
    on,
    rps_ratio_on_off: round3(on.rps / off.rps),
    added_p50_ms: round3(on.latency_ms.p50 - off.latency_ms.p50),
    added_p99_ms: round3(on.latency_ms.p99 - off.latency_ms.p99),
    cpu_ratio_on_off: ratio(on.cpu_seconds_per_1000_checks, off.cpu_seconds_per_1000_checks),
  };
}

type HistoryVariant = 'off' | 'in-process' | 'redis';

/**
 * input.history's cost: toolgate embedded with one bundle that reads it, alternated round by round between
 * history off (the engine is told never to fetch it: what a bundle without a reference costs), the in-process
 * store and a local redis-server. The figure of merit is the added p50 at the fixed rate (target <= 0.1 ms).
 */
async function runHistoryOnly(ctx: Ctx, jwt: string, body: string): Promise<void> {
  const redis = await startRedis();
  try {
    const wasm = await historyBundleFor(ctx.dir, ctx.bins.opa);
    const bundles: Bundles = { wasm, rego: wasm };
    const configs: Record<HistoryVariant, Record<string, unknown>> = {
      off: { history: { read: 'never' } },
      'in-process': { history: { read: 'auto' } },
      redis: { history: { read: 'auto' }, store: { redis_url: redis.url } },
    };
    const keys = Object.keys(configs) as HistoryVariant[];
    const variants = new Map<HistoryVariant, RunningConfig>();
    for (const k of keys) variants.set(k, await startConfig('b', { ...ctx, tag: `history-${k}`, bundles, toolgateConfig: configs[k] }));
    const m = new Map<HistoryVariant, Measured>(keys.map((k) => [k, emptyMeasured()]));
    try {
      for (const v of variants.values()) await warmUp(v, jwt, body);
      for (let round = 0; round < ROUNDS; round++) {
        for (const k of keys.map((_, i) => keys[(i + round) % keys.length] as HistoryVariant)) {
          const c = variants.get(k) as RunningConfig;
          const x = m.get(k) as Measured;
          const before = usageOf(c.authzPids);
          const sat = await load(c, jwt, body, { requests: SAT_REQUESTS }, `history-${k}-sat-${round}`);
          const after = usageOf(c.authzPids);
          const fixed = await load(c, jwt, body, { rate: RATE, seconds: SECONDS }, `history-${k}-rate-${round}`);
          x.rps.push(sat.rps);
          x.cpuPer1000.push(((after.cpuSeconds - before.cpuSeconds) / sat.requests) * 1000);
          x.latency.push(...fixed.latenciesMs);
          x.non2xx += nonOk(sat) + nonOk(fixed);
          log(`history ${k} round ${round + 1}: ${sat.rps.toFixed(0)} req/s, p50 at ${RATE} req/s ${summarize(fixed.latenciesMs).p50} ms`);
        }
      }
    } finally {
      for (const v of variants.values()) await v.stop();
    }
    const result = Object.fromEntries(keys.map((k) => {
      const x = m.get(k) as Measured;
      return [k, { rps: median(x.rps), latency_ms: summarize(x.latency), cpu_seconds_per_1000_checks: round3(median(x.cpuPer1000)), non_2xx: x.non2xx }];
    })) as Record<HistoryVariant, TracingVariant>;
    const added = (k: HistoryVariant): number => round3(result[k].latency_ms.p50 - result.off.latency_ms.p50);
    const md = [
      '## input.history on the check path (toolgate embedded; one bundle that reads it)',
      '',
      `| history | req/s (saturation, median) | p50 ms at ${RATE} req/s | p99 ms | CPU s / 1000 checks | added p50 ms |`,
      '|---|---|---|---|---|---|',
      ...keys.map((k) => `| ${k} | ${result[k].rps.toFixed(0)} | ${result[k].latency_ms.p50} | ${result[k].latency_ms.p99} | ${result[k].cpu_seconds_per_1000_checks} | ${k === 'off' ? '-' : added(k)} |`),
      '',
      `Target: added p50 <= 0.1 ms against a local store (in-process: ${added('in-process')} ms, Redis on loopback: ${added('redis')} ms).`,
      '',
    ].join('\n');
    const outDir = join(REPO_ROOT, 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'check-path-history.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rounds: ROUNDS, rate: RATE, history: result }, null, 2));
    await writeFile(join(outDir, 'check-path-history.md'), md);
    process.stdout.write(md);
    if (keys.some((k) => result[k].non_2xx > 0)) throw new Error('requests did not answer 200 in the history measurement');
  } finally {
    await redis.stop();
  }
}

function shadowMarkdown(r: TracingResult): string {
  return [
    '## Shadow policy on the check path (toolgate embedded; the candidate is a bundle of the same size)',
    '',
    '| shadow | req/s (median) | p50 ms | p99 ms | CPU s / 1000 checks |',
    '|---|---|---|---|---|',
    ...(['off', 'on'] as const).map((k) => `| ${k} | ${r[k].rps.toFixed(0)} | ${r[k].latency_ms.p50} | ${r[k].latency_ms.p99} | ${r[k].cpu_seconds_per_1000_checks} |`),
    '',
    `on/off: req/s ${r.rps_ratio_on_off}, CPU ${r.cpu_ratio_on_off} (budget: 1.30), added p50 ${r.added_p50_ms} ms, added p99 ${r.added_p99_ms} ms.`,
    '',
  ].join('\n');
}

async function load(c: RunningConfig, jwt: string, bodyFile: string, how: { requests: number } | { rate: number; seconds: number }, tag: string): Promise<LoadResult> {
  return h2load({ url: c.url, headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, bodyFile, clients: 'rate' in how ? RATE_CLIENTS : CLIENTS, ...how, logFile: join(benchRunDir('check-path'), `h2load-${tag}.log`) });
}

async function warmUp(c: RunningConfig, jwt: string, body: string, requests = 2000): Promise<void> {
  const r = await load(c, jwt, body, { requests: Math.max(100, Math.round(requests)) }, `${c.name}-warmup`);
  if (nonOk(r) > 0) throw new Error(`${c.name} (${CONFIG_LABELS[c.name]}) answers non-200 during warm-up: ${JSON.stringify({ ...r, latenciesMs: undefined })}`);
}

function nonOk(r: LoadResult): number {
  return r.requests - r.status2xx + (Number.isNaN(r.failed) ? 0 : r.failed);
}

/** Tool-call bodies: a small call and arguments of 1 KiB, 64 KiB and 1 MiB. */
async function writeBodies(dir: string): Promise<{ small: string; kib1: string; kib64: string; mib1: string }> {
  const write = async (name: string, size: number | undefined): Promise<string> => {
    const path = join(dir, `${name}.json`);
    const overhead = '{"message":""}'.length;
    await writeFile(path, JSON.stringify({ message: size === undefined ? 'restart the api deployment in staging' : 'x'.repeat(size - overhead) }));
    return path;
  };
  return { small: await write('small', undefined), kib1: await write('1k', 1024), kib64: await write('64k', 64 * 1024), mib1: await write('1m', 1024 * 1024 - 64) };
}

function markdown(r: { main: Record<ConfigName, MainResult>; ratios_vs_d: Record<string, Record<string, number | null>>; added_over_a_ms: Record<string, Record<string, number>>; tracing: TracingResult; data_growth: Record<string, Record<string, PointResult>>; body_growth: Record<string, Record<string, PointResult>>; machine: { cpus: number; model: string | undefined } }, errors: number): string {
  const m = r.main;
  const lines = [
    `# Check path: toolgate vs the OPA Envoy plugin (${r.machine.cpus} cores, ${r.machine.model ?? ''})`,
    '',
    `Same Envoy (worker threads: ${ENVOY_WORKERS_TEXT}), same upstream, same Rego (bench/policy) and data (${MAIN_AGENTS} agents); h2load --h1, ${CLIENTS} clients; saturation = ${SAT_REQUESTS} requests, median of ${ROUNDS} rounds; latency at a fixed ${RATE} req/s over ${RATE_CLIENTS} connection(s) (${SECONDS} s x ${ROUNDS} rounds, all samples).`,
    '',
    mainTable(m),
    '',
    ...sweepTable(m),
    `Targets: b/d req/s = **${round3(m.b.rps / m.d.rps)}** (≥ 1.0), b/d p99 = **${round3(m.b.latency_ms.p99 / m.d.latency_ms.p99)}** (≤ 1.0), added p50 of b over a = **${round3(m.b.latency_ms.p50 - m.a.latency_ms.p50)} ms** (≤ 0.5 ms); non-2xx answers in all runs: **${errors}**.`,
    '',
    '## Tracing on the check path (toolgate embedded; spans exported to a real OpenTelemetry Collector)',
    '',
    '| tracing | req/s (median) | p50 ms | p99 ms | CPU s / 1000 checks |',
    '|---|---|---|---|---|',
    ...(['off', 'on'] as const).map((k) => `| ${k} | ${r.tracing[k].rps.toFixed(0)} | ${r.tracing[k].latency_ms.p50} | ${r.tracing[k].latency_ms.p99} | ${r.tracing[k].cpu_seconds_per_1000_checks} |`),
    '',
    `on/off: req/s ${r.tracing.rps_ratio_on_off}, CPU ${r.tracing.cpu_ratio_on_off}, added p50 ${r.tracing.added_p50_ms} ms, added p99 ${r.tracing.added_p99_ms} ms. Metrics are always on in both.`,
    '',
    '## Growth with the policy data (authorized agents; saturation runs)',
    '',
    growthTable(r.data_growth, 'agents'),
    '',
    '## Growth with the request body (tool arguments; saturation runs)',
    '',
    growthTable(r.body_growth, 'body'),
    '',
  ];
  return lines.join('\n');
}

function mainTable(m: Record<ConfigName, MainResult>): string {
  return [
    '| configuration | req/s (saturation) | ratio vs d | p50 ms | p90 ms | p99 ms | p99 ratio vs d | added p50 over a, ms | check round trip in Envoy p50 / p99 µs | CPU s / 1000 checks | front Envoy CPU s / 1000 | RSS MiB (peak) | non-2xx |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...(['a', 'b', 'c', 'd', 'e'] as const).map((n) => {
      const x = m[n];
      const vsD = n === 'd' ? 1 : round3(x.rps / m.d.rps);
      const p99vsD = n === 'd' ? 1 : round3(x.latency_ms.p99 / m.d.latency_ms.p99);
      const added = n === 'a' ? '-' : String(round3(x.latency_ms.p50 - m.a.latency_ms.p50));
      const mem = x.memory_mib ? `${x.memory_mib.rssMiB} (${x.memory_mib.peakRssMiB})` : '-';
      const trip = x.authz_round_trip_us ? `${x.authz_round_trip_us.p50} / ${x.authz_round_trip_us.p99}` : '-';
      return `| (${n}) ${x.label} | ${x.rps.toFixed(0)} | ${vsD} | ${x.latency_ms.p50} | ${x.latency_ms.p90} | ${x.latency_ms.p99} | ${p99vsD} | ${added} | ${trip} | ${x.cpu_seconds_per_1000_checks ?? '-'} | ${x.envoy_cpu_seconds_per_1000} | ${mem} | ${x.non_2xx} |`;
    }),
  ].join('\n');
}

function growthTable(points: Record<string, Record<string, PointResult>>, what: string): string {
  const names = Object.keys(Object.values(points)[0] ?? {});
  const head = `| ${what} | ${names.map((n) => `(${n}) req/s | (${n}) p50 ms | (${n}) p99 ms | (${n}) CPU s/1000`).join(' | ')} |`;
  const sep = `|---|${names.map(() => '---|---|---|---').join('|')}|`;
  const rows = Object.entries(points).map(([k, p]) => `| ${k} | ${names.map((n) => { const x = p[n] as PointResult; return `${x.rps.toFixed(0)} | ${x.latency_ms.p50} | ${x.latency_ms.p99} | ${x.cpu_seconds_per_1000_checks ?? '-'}`; }).join(' | ')} |`);
  return [head, sep, ...rows].join('\n');
}

/** Added p50 over (a) at each fixed rate: the main one and the sweep. */
function sweepTable(m: Record<ConfigName, MainResult>): string[] {
  const rates = [RATE, ...SWEEP_RATES].sort((x, y) => x - y);
  if (rates.length < 2) return [];
  const at = (n: ConfigName, rate: number): Summary | undefined => (rate === RATE ? m[n].latency_ms : m[n].latency_ms_by_rate[String(rate)]);
  const rows = rates.map((rate) => {
    const a = at('a', rate);
    const cells = (['b', 'c', 'd', 'e'] as const).map((n) => {
      const x = at(n, rate);
      return x && a ? `${x.p50} (${signed(round3(x.p50 - a.p50))})` : '-';
    });
    return `| ${rate} | ${a?.p50 ?? '-'} | ${cells.join(' | ')} |`;
  });
  return [
    `Latency by fixed rate (one connection; ${SECONDS} s per round at ${RATE} req/s, ${SWEEP_SECONDS} s at the others): p50 ms (added over a)`,
    '',
    '| req/s | (a) p50 | (b) | (c) | (d) | (e) floor |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : round3(a / b));
const signed = (x: number): string => (x < 0 ? String(x) : `+${x}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
