/**
 * What io.jwt.decode_verify costs in a policy, on the embedded engine and against the OPA Envoy plugin:
 *
 * 1. In process: WasmPolicyEngine.evaluate on the same input with bench/policy (P0) and with
 *    bench/policy-jwt (P1 = P0 + an HS256 token verified with io.jwt.decode_verify), µs per decision,
 *    alternated rounds. P1 with the same token every time and with a different token every decision.
 * 2. Through Envoy (bench/lib/configurations.ts): toolgate embedded with P0 and with P1, and the OPA Envoy
 *    plugin with P1 (and P0): requests/s at saturation, CPU seconds per 1000 checks of the authorization
 *    process, p50/p99 at a fixed rate, configurations alternated round by round.
 * Writes bench/results/jwt-policy.{json,md}. Every request must answer 200.
 *
 *   OPA_ENVOY_PLUGIN=/path/to/opa-envoy-plugin npm run bench:jwt-policy [-- --rounds 3 --requests 20000 --rate 200 --seconds 10 --decisions 20000 --in-process-only]
 */
import { createHmac } from 'node:crypto';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { loadBundleFile } from '../src/authz/bundle/bundle.js';
import { buildBundle } from '../src/authz/bundle/build-bundle.js';
import type { JsonObject } from '../src/authz/input/envoy-input.js';
import type { EncodedInput } from '../src/authz/input/input-json.js';
import { WasmPolicyEngine } from '../src/authz/policy/wasm-engine.js';
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { ensureDevCredentials, signAgentJwt } from '../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { ensureEnvoy, ensureOpa } from '../src/toolchain/install.js';
import { stopAll } from '../test/support/managed-process.js';
import { DECISION, startConfig, startUpstream, type Bundles, type ConfigName, type RunningConfig } from './lib/configurations.js';
import { h2load, type LoadResult } from './lib/h2load.js';
import { usageOf } from './lib/process-usage.js';
import { summarize, type Summary } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} takes a positive number`);
  return v;
};
const ROUNDS = arg('rounds', 3);
const DECISIONS = arg('decisions', 20_000);
const SAT_REQUESTS = arg('requests', 20_000);
const CLIENTS = arg('clients', 16);
const RATE = arg('rate', 200);
const SECONDS = arg('seconds', 10);
const IN_PROCESS_ONLY = process.argv.includes('--in-process-only');

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function hs256(payload: Record<string, unknown>, secret: string): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function userToken(i: number): string {
  const now = Math.floor(Date.now() / 1000);
  return hs256({ sub: `user-${i}`, role: 'operator', nbf: now - 60, exp: now + 4 * 3600 }, 'secret');
}

async function policyBundles(dir: string, opa: string, policyDir: string, name: string): Promise<Bundles> {
  const src = join(dir, `src-${name}`);
  await cp(join(REPO_ROOT, 'bench', policyDir), src, { recursive: true });
  await writeFile(join(src, 'data.json'), JSON.stringify({ authorized_agents: Object.fromEntries(['ops-bot', ...Array.from({ length: 9 }, (_, i) => `agent-${i + 1}`)].map((a) => [a, true])) }));
  const wasm = join(dir, `bundle-${name}-wasm.tar.gz`);
  const rego = join(dir, `bundle-${name}-rego.tar.gz`);
  await buildBundle({ opaPath: opa, sourceDir: src, outFile: wasm, revision: name, entrypoints: [DECISION] });
  await buildBundle({ opaPath: opa, sourceDir: src, outFile: rego, revision: name, target: 'rego' });
  return { wasm, rego };
}

/** The input toolgate builds for the benchmark's request (the fields both policies read, and the headers). */
function inputWith(token: string): EncodedInput {
  const input = {
    attributes: {
      request: { http: { method: 'POST', path: `/v1/tools/echo?token=${token}`, host: 'toolgate', headers: { 'content-type': 'application/json', 'x-request-id': 'f0e1d2c3' } } },
      metadataContext: { filterMetadata: { 'envoy.filters.http.jwt_authn': { jwt_payload: { sub: 'ops-bot', iss: 'toolgate-dev', aud: 'toolgate' } } } },
    },
    parsed_path: ['v1', 'tools', 'echo'],
    parsed_query: { token: [token] },
    parsed_body: { message: 'restart the api deployment in staging' },
  };
  const skeleton = Buffer.from(JSON.stringify(input));
  return { skeleton, byteLength: skeleton.length };
}

/** As the engine hands pre-encoded input to opa-wasm. */
function ownArrayBuffer(b: Buffer): ArrayBuffer {
  const ab = b.buffer as ArrayBuffer;
  return b.byteOffset === 0 && b.byteLength === ab.byteLength ? ab : ab.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

async function inProcess(p0: Bundles, p1: Bundles): Promise<Record<string, { us_per_decision: number; rounds: number[] }>> {
  const engines = { p0: new WasmPolicyEngine(DECISION), p1: new WasmPolicyEngine(DECISION) };
  await engines.p0.activate(await loadBundleFile(p0.wasm));
  await engines.p1.activate(await loadBundleFile(p1.wasm));
  const sameToken = inputWith(userToken(0));
  // More distinct tokens than the engine's per-key cache of verified signatures holds (1024): every decision misses.
  const fresh = Array.from({ length: 5000 }, (_, i) => inputWith(userToken(i)));
  // The engine before host builtins: opa-wasm's own loadPolicy and evaluate, as a baseline for P0.
  const p0Bundle = await loadBundleFile(p0.wasm);
  const sdkPolicy = await loadPolicy(p0Bundle.wasm[0]?.bytes as Uint8Array, { initial: 32, maximum: 4096 });
  sdkPolicy.setData(p0Bundle.data);
  const sdkEntrypoint = (sdkPolicy.entrypoints as Record<string, number>)[DECISION] as number;
  // The same wrapper as WasmPolicyEngine.evaluate (result set -> first result, revision), minus the host.
  const viaSdk = {
    evaluate: async (_i: JsonObject, json?: EncodedInput) => {
      let resultSet: unknown;
      try {
        resultSet = sdkPolicy.evaluate(ownArrayBuffer((json as EncodedInput).skeleton), sdkEntrypoint);
      } catch (err) {
        throw new Error(String(err));
      }
      const first = Array.isArray(resultSet) ? (resultSet[0] as { result?: unknown } | undefined) : undefined;
      return { result: first?.result, revision: 'p0' };
    },
  };
  const variants: Record<string, { engine: Pick<WasmPolicyEngine, 'evaluate'> | typeof viaSdk; input: (i: number) => EncodedInput }> = {
    'P0 via opa-wasm loadPolicy (the engine without host builtins)': { engine: viaSdk, input: () => sameToken },
    'P0 bench/policy': { engine: engines.p0, input: () => sameToken },
    'P1 + io.jwt.decode_verify, same token': { engine: engines.p1, input: () => sameToken },
    'P1 + io.jwt.decode_verify, a new token each decision': { engine: engines.p1, input: (i) => fresh[i % fresh.length] as EncodedInput },
  };
  const empty = {} as JsonObject;
  for (const v of Object.values(variants)) {
    const r = await v.engine.evaluate(empty, v.input(0));
    if (r.result !== true) throw new Error(`the benchmark policy does not allow its request (${JSON.stringify(r.result)})`);
  }
  const out: Record<string, { us_per_decision: number; rounds: number[] }> = {};
  for (const name of Object.keys(variants)) out[name] = { us_per_decision: 0, rounds: [] };
  for (let round = 0; round < ROUNDS + 1; round++) {
    for (const [name, v] of Object.entries(variants)) {
      // CPU time, not wall time: on a shared machine the wall clock mostly measures waiting for a core
      const start = process.cpuUsage();
      for (let i = 0; i < DECISIONS; i++) await v.engine.evaluate(empty, v.input(i));
      const used = process.cpuUsage(start);
      const us = (used.user + used.system) / DECISIONS;
      if (round > 0) out[name]?.rounds.push(round3(us)); // round 0 warms the JIT
    }
  }
  for (const r of Object.values(out)) r.us_per_decision = median(r.rounds);
  return out;
}

interface PathResult {
  label: string;
  rps: number;
  rps_rounds: number[];
  cpu_seconds_per_1000_checks: number;
  latency_ms: Summary;
  non_2xx: number;
}

async function throughEnvoy(dir: string, opa: string, plugin: string | undefined, p0: Bundles, p1: Bundles): Promise<Record<string, PathResult>> {
  const creds = await ensureDevCredentials(join(dir, 'creds'));
  const agentJwt = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 4 * 3600 });
  const upstream = await startUpstream(dir);
  const body = join(dir, 'body.json');
  await writeFile(body, JSON.stringify({ message: 'restart the api deployment in staging' }));
  const bins = { opa, opaEnvoyPlugin: plugin ?? '' };
  const ctx = { dir, creds, upstreamPort: upstream.port, bins };
  // Distinct tokens, more than the engine's signature cache holds (1024), requested in turn: every check verifies.
  const freshUris = join(dir, 'uris-fresh.txt');
  const sameUris = join(dir, 'uris-same.txt');
  const target = (c: RunningConfig, token: string): string => `${c.url}?token=${token}`;
  const configs: { key: string; name: ConfigName; bundles: Bundles }[] = [
    { key: 'b-p0', name: 'b', bundles: p0 },
    { key: 'b-p1', name: 'b', bundles: p1 },
    ...(plugin ? [{ key: 'd-p0', name: 'd' as ConfigName, bundles: p0 }, { key: 'd-p1', name: 'd' as ConfigName, bundles: p1 }] : []),
  ];
  const running = new Map<string, RunningConfig>();
  for (const c of configs) running.set(c.key, await startConfig(c.name, { ...ctx, tag: c.key, bundles: c.bundles }));
  const tokens = Array.from({ length: 5000 }, (_, i) => userToken(i));
  const setups: { key: string; label: string; config: string; fresh: boolean }[] = [
    { key: 'b-p0', label: 'toolgate embedded, P0', config: 'b-p0', fresh: true },
    { key: 'b-p1', label: 'toolgate embedded, P1, a new token each request', config: 'b-p1', fresh: true },
    { key: 'b-p1-same', label: 'toolgate embedded, P1, the same token', config: 'b-p1', fresh: false },
    ...(plugin
      ? [
          { key: 'd-p0', label: 'OPA Envoy plugin, P0', config: 'd-p0', fresh: true },
          { key: 'd-p1', label: 'OPA Envoy plugin, P1, a new token each request', config: 'd-p1', fresh: true },
        ]
      : []),
  ];
  const headers = { authorization: `Bearer ${agentJwt}`, 'content-type': 'application/json' };
  const run = async (s: (typeof setups)[number], how: { requests: number } | { rate: number; seconds: number }, tag: string): Promise<LoadResult> => {
    const c = running.get(s.config) as RunningConfig;
    const uris = s.fresh ? freshUris : sameUris;
    await writeFile(uris, `${(s.fresh ? tokens : tokens.slice(0, 1)).map((t) => target(c, t)).join('\n')}\n`);
    return h2load({ url: c.url, urisFile: uris, headers, bodyFile: body, clients: 'rate' in how ? 1 : CLIENTS, ...how, logFile: join(dir, `h2load-${tag}.log`) });
  };
  const acc = new Map<string, { rps: number[]; cpu: number[]; lat: number[]; non2xx: number }>(setups.map((s) => [s.key, { rps: [], cpu: [], lat: [], non2xx: 0 }]));
  for (const s of setups) {
    const w = await run(s, { requests: 2000 }, `${s.key}-warm`);
    if (w.status2xx !== w.requests) throw new Error(`${s.label} answers non-200 during warm-up (${w.status2xx}/${w.requests})`);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = setups.map((_, i) => setups[(i + round) % setups.length] as (typeof setups)[number]);
    for (const s of order) {
      const c = running.get(s.config) as RunningConfig;
      const a = acc.get(s.key) as { rps: number[]; cpu: number[]; lat: number[]; non2xx: number };
      const before = usageOf(c.authzPids).cpuSeconds;
      const sat = await run(s, { requests: SAT_REQUESTS }, `${s.key}-sat-${round}`);
      a.cpu.push(((usageOf(c.authzPids).cpuSeconds - before) / sat.requests) * 1000);
      a.rps.push(sat.rps);
      const fixed = await run(s, { rate: RATE, seconds: SECONDS }, `${s.key}-rate-${round}`);
      a.lat.push(...fixed.latenciesMs);
      a.non2xx += sat.requests - sat.status2xx + fixed.requests - fixed.status2xx;
      log(`round ${round + 1}/${ROUNDS} ${s.label}: ${sat.rps.toFixed(0)} req/s, ${(a.cpu.at(-1) ?? 0).toFixed(3)} CPU s/1000 checks, p50 ${summarize(fixed.latenciesMs).p50} ms`);
    }
  }
  for (const c of running.values()) await c.stop();
  await upstream.proc.stop();
  return Object.fromEntries(
    setups.map((s) => {
      const a = acc.get(s.key) as { rps: number[]; cpu: number[]; lat: number[]; non2xx: number };
      return [s.key, { label: s.label, rps: Math.round(median(a.rps)), rps_rounds: a.rps.map(Math.round), cpu_seconds_per_1000_checks: round3(median(a.cpu)), latency_ms: summarize(a.lat), non_2xx: a.non2xx }];
    }),
  );
}

async function main(): Promise<void> {
  const dir = benchRunDir('jwt-policy');
  const [, opa] = await Promise.all([ensureEnvoy(), ensureOpa()]);
  const plugin = process.env.OPA_ENVOY_PLUGIN;
  const p0 = await policyBundles(dir, opa, 'policy', 'p0');
  const p1 = await policyBundles(dir, opa, 'policy-jwt', 'p1');
  log(`work dir ${dir}; ${ROUNDS} rounds`);
  const evaluation = await inProcess(p0, p1);
  for (const [k, v] of Object.entries(evaluation)) log(`in process: ${k}: ${v.us_per_decision} µs/decision (${v.rounds.join(', ')})`);
  const checkPath = IN_PROCESS_ONLY ? undefined : await throughEnvoy(dir, opa, plugin, p0, p1);
  const e = Object.values(evaluation).map((v) => v.us_per_decision);
  const result = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model },
    in_process: evaluation,
    in_process_ratio_p1_over_p0: { same_token: round3((e[2] as number) / (e[1] as number)), new_token_each: round3((e[3] as number) / (e[1] as number)), p0_engine_over_sdk: round3((e[1] as number) / (e[0] as number)) },
    check_path: checkPath ?? null,
    plugin: plugin ? 'OPA_ENVOY_PLUGIN' : 'not measured (set OPA_ENVOY_PLUGIN)',
  };
  await mkdir(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(REPO_ROOT, 'bench', 'results', 'jwt-policy.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = markdown(result);
  await writeFile(join(REPO_ROOT, 'bench', 'results', 'jwt-policy.md'), md);
  process.stdout.write(md);
  const non2xx = Object.values(checkPath ?? {}).reduce((s, r) => s + r.non_2xx, 0);
  if (non2xx > 0) throw new Error(`${non2xx} requests answered other than 200`);
}

function markdown(r: { machine: { cpus: number; model: string | undefined }; in_process: Record<string, { us_per_decision: number; rounds: number[] }>; in_process_ratio_p1_over_p0: Record<string, number>; check_path: Record<string, PathResult> | null }): string {
  const lines = [
    `# io.jwt.decode_verify in the policy (${r.machine.cpus} cores, ${r.machine.model ?? ''})`,
    '',
    `P0 = bench/policy; P1 = bench/policy-jwt (P0 + an HS256 token verified with io.jwt.decode_verify). ${ROUNDS} rounds, medians.`,
    '',
    '## Policy evaluation in process (WasmPolicyEngine.evaluate, pre-encoded input; CPU time)',
    '',
    '| policy | CPU µs per decision | rounds |',
    '|---|---|---|',
    ...Object.entries(r.in_process).map(([k, v]) => `| ${k} | ${v.us_per_decision} | ${v.rounds.join(', ')} |`),
    '',
    `P1 / P0: **${r.in_process_ratio_p1_over_p0.same_token}** (same token), **${r.in_process_ratio_p1_over_p0.new_token_each}** (a new token each decision); target ≤ 2. P0 on the engine / P0 on opa-wasm's loadPolicy: **${r.in_process_ratio_p1_over_p0.p0_engine_over_sdk}** (a policy without host builtins must not be slower).`,
    '',
  ];
  if (r.check_path) {
    const c = r.check_path;
    lines.push(
      '## Through Envoy (h2load --h1; saturation and a fixed rate)',
      '',
      `| configuration | req/s (median) | authz CPU s / 1000 checks | p50 ms @ ${RATE} req/s | p99 ms |`,
      '|---|---|---|---|---|',
      ...Object.values(c).map((x) => `| ${x.label} | ${x.rps} | ${x.cpu_seconds_per_1000_checks} | ${x.latency_ms.p50} | ${x.latency_ms.p99} |`),
      '',
    );
    const b0 = c['b-p0'];
    const b1 = c['b-p1'];
    const d1 = c['d-p1'];
    const b1same = c['b-p1-same'];
    if (b0 && b1) lines.push(`Embedded, P1 / P0 per check: CPU **${round3(b1.cpu_seconds_per_1000_checks / b0.cpu_seconds_per_1000_checks)}** (a new token each request), **${b1same ? round3(b1same.cpu_seconds_per_1000_checks / b0.cpu_seconds_per_1000_checks) : '-'}** (the same token); req/s **${round3(b1.rps / b0.rps)}**.`);
    if (b1 && d1) lines.push(`P1, toolgate embedded / OPA Envoy plugin: CPU per check **${round3(b1.cpu_seconds_per_1000_checks / d1.cpu_seconds_per_1000_checks)}** (< 1 is cheaper), req/s **${round3(b1.rps / d1.rps)}**, p50 **${round3(b1.latency_ms.p50 / d1.latency_ms.p50)}**.`);
    lines.push('');
  }
  return lines.join('\n');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
