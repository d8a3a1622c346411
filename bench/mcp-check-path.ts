import { cpus } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDevCredentials, signAgentJwt } from '../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { ensureEnvoy, ensureOpa, ensureOpaEnvoyPlugin } from '../src/toolchain/install.js';
import { bundlesFor } from './lib/bench-bundles.js';
import { BENCH_MCP_RESOURCE, startConfig, startUpstream, type RunningConfig } from './lib/configurations.js';
import { h2load, type LoadResult } from './lib/h2load.js';
import { usageOf } from './lib/process-usage.js';
import { summarize } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

/**
 * The check path of an MCP tools/call next to the same call over REST, for toolgate (embedded engine) and
 * the OPA Envoy plugin, behind the same Envoy (envoy/toolgate.yaml) and the same Rego (bench/policy: one
 * rule per protocol, both reading input.parsed_body). Arguments of 1 KiB and 64 KiB. Per point: checks/s at
 * saturation, CPU seconds per 1000 checks of the authorization process, p50 at a fixed rate. Rounds
 * alternate the order of the configurations. Writes bench/results/mcp-check-path.{json,md}.
 *
 *   npm run bench:mcp-check-path [-- --rounds 3 --requests 4000 --rate 200 --seconds 5]
 */
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const ROUNDS = arg('rounds', 3);
const REQUESTS = arg('requests', 4000);
const RATE = arg('rate', 200);
const SECONDS = arg('seconds', 5);
const CLIENTS = 16;

type Protocol = 'rest' | 'mcp';
type Size = '1KiB' | '64KiB';
interface Sample {
  rps: number;
  cpuPer1000: number;
  p50: number;
  non2xx: number;
}

async function main(): Promise<void> {
  const dir = benchRunDir('mcp-check-path');
  const [, opa, plugin] = await Promise.all([ensureEnvoy(), ensureOpa(), process.env.OPA_ENVOY_PLUGIN ?? ensureOpaEnvoyPlugin()]);
  const creds = await ensureDevCredentials(join(dir, 'creds'));
  const restJwt = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 4 * 3600 });
  const mcpJwt = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 4 * 3600, audience: BENCH_MCP_RESOURCE });
  const bodies = await writeBodies(dir);
  const bundles = await bundlesFor(dir, opa, 1000);
  const upstream = await startUpstream(dir);
  const bins = { opa, opaEnvoyPlugin: plugin };
  const configs: RunningConfig[] = [];
  for (const name of ['b', 'd'] as const) configs.push(await startConfig(name, { dir, tag: 'mcp', creds, upstreamPort: upstream.port, bins, bundles }));

  const samples: Record<string, Sample[]> = {};
  const key = (c: RunningConfig, p: Protocol, s: Size): string => `${c.name}/${p}/${s}`;
  const expectAllowed = async (c: RunningConfig, p: Protocol, s: Size): Promise<void> => {
    const url = p === 'rest' ? c.url : c.url.replace('/v1/tools/echo', '/mcp');
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${p === 'rest' ? restJwt : mcpJwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: await readFile(bodies[p][s]) });
    const text = await res.text();
    let error: unknown;
    try {
      error = (JSON.parse(text) as { error?: unknown }).error;
    } catch {
      // not JSON: the upstream's own answer
    }
    if (res.status !== 200 || error !== undefined) throw new Error(`${c.name} ${p} ${s}: the call is not allowed (${res.status} ${text.slice(0, 300)})`);
  };
  const run = async (c: RunningConfig, p: Protocol, s: Size, how: { requests: number } | { rate: number; seconds: number }, tag: string): Promise<LoadResult> => {
    const url = p === 'rest' ? c.url : c.url.replace('/v1/tools/echo', '/mcp');
    const headers = { authorization: `Bearer ${p === 'rest' ? restJwt : mcpJwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    return h2load({ url, headers, bodyFile: bodies[p][s], clients: 'rate' in how ? 1 : CLIENTS, ...how, logFile: join(dir, `h2load-${tag}.log`) });
  };
  const points: [Protocol, Size][] = [['rest', '1KiB'], ['mcp', '1KiB'], ['rest', '64KiB'], ['mcp', '64KiB']];
  // Every point must measure an allowed call: an MCP refusal is HTTP 200 too (a JSON-RPC error), so a policy
  // that refuses would go unnoticed in the status counts.
  for (const c of configs) for (const [p, s] of points) await expectAllowed(c, p, s);
  for (const c of configs) for (const [p, s] of points) await run(c, p, s, { requests: 500 }, `warm-${key(c, p, s).replaceAll('/', '-')}`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? configs : [...configs].reverse();
    for (const [p, s] of points) {
      for (const c of order) {
        const requests = s === '64KiB' ? Math.round(REQUESTS / 4) : REQUESTS;
        const before = usageOf(c.authzPids).cpuSeconds;
        const sat = await run(c, p, s, { requests }, `sat-${round}`);
        const cpu = usageOf(c.authzPids).cpuSeconds - before;
        const fixed = await run(c, p, s, { rate: RATE, seconds: SECONDS }, `rate-${round}`);
        (samples[key(c, p, s)] ??= []).push({ rps: sat.rps, cpuPer1000: (cpu / sat.requests) * 1000, p50: summarize(fixed.latenciesMs).p50, non2xx: sat.requests - sat.status2xx + (fixed.requests - fixed.status2xx) });
        process.stdout.write(`round ${round + 1}/${ROUNDS} ${key(c, p, s)}: ${Math.round(sat.rps)} checks/s, ${((cpu / sat.requests) * 1000).toFixed(3)} CPU s/1000, p50 ${summarize(fixed.latenciesMs).p50} ms\n`);
      }
    }
  }
  for (const c of configs) await c.stop();
  await upstream.proc.stop();

  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const result: Record<string, { rps: number; cpu_s_per_1000: number; p50_ms: number; non_2xx: number }> = {};
  for (const [k, v] of Object.entries(samples)) result[k] = { rps: Math.round(median(v.map((x) => x.rps))), cpu_s_per_1000: round3(median(v.map((x) => x.cpuPer1000))), p50_ms: round3(median(v.map((x) => x.p50))), non_2xx: v.reduce((a, x) => a + x.non2xx, 0) };
  const out = join(REPO_ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  const machine = { cpus: cpus().length, model: cpus()[0]?.model };
  // Rounds on a shared VM differ by up to ±30% in p50: a ratio within each round (its two points measured
  // minutes apart at most) cancels that drift; the median of those ratios is reported beside the ratio of medians.
  const paired = (a: string, b: string, f: keyof Sample): number => round3(median((samples[a] ?? []).map((x, i) => x[f] / ((samples[b] ?? [])[i]?.[f] ?? NaN))));
  const pairedRatios = {
    mcp_over_rest_1kib: { cpu: paired('b/mcp/1KiB', 'b/rest/1KiB', 'cpuPer1000'), p50: paired('b/mcp/1KiB', 'b/rest/1KiB', 'p50') },
    toolgate_over_plugin_64kib_rps: { rest: paired('b/rest/64KiB', 'd/rest/64KiB', 'rps'), mcp: paired('b/mcp/64KiB', 'd/mcp/64KiB', 'rps') },
    toolgate_over_plugin_mcp_1kib_cpu: paired('b/mcp/1KiB', 'd/mcp/1KiB', 'cpuPer1000'),
  };
  const md = `${markdown(result, machine)}\nPaired within each round (median of the rounds' ratios): toolgate MCP / REST at 1 KiB: CPU ${pairedRatios.mcp_over_rest_1kib.cpu}x, p50 ${pairedRatios.mcp_over_rest_1kib.p50}x; toolgate / plugin, MCP 1 KiB CPU ${pairedRatios.toolgate_over_plugin_mcp_1kib_cpu}x; 64 KiB checks/s toolgate/plugin: REST ${pairedRatios.toolgate_over_plugin_64kib_rps.rest}x, MCP ${pairedRatios.toolgate_over_plugin_64kib_rps.mcp}x.`;
  await writeFile(join(out, 'mcp-check-path.json'), JSON.stringify({ machine, rounds: ROUNDS, result, paired: pairedRatios, rounds_samples: samples }, null, 2));
  await writeFile(join(out, 'mcp-check-path.md'), md);
  process.stdout.write(`\n${md}\n`);
  const errors = Object.values(result).reduce((a, r) => a + r.non_2xx, 0);
  if (errors > 0) {
    process.stderr.write(`${errors} requests answered other than 2xx\n`);
    process.exitCode = 1;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function markdown(r: Record<string, { rps: number; cpu_s_per_1000: number; p50_ms: number }>, machine: { cpus: number; model: string | undefined }): string {
  const row = (label: string, k: string): string => `| ${label} | ${r[k]?.rps ?? ''} | ${r[k]?.cpu_s_per_1000 ?? ''} | ${r[k]?.p50_ms ?? ''} |`;
  const ratio = (a: string, b: string, f: 'rps' | 'cpu_s_per_1000' | 'p50_ms'): string => ((r[a]?.[f] ?? NaN) / (r[b]?.[f] ?? NaN)).toFixed(2);
  return [
    `# MCP tools/call vs REST: the check path (${machine.cpus} cores, ${machine.model ?? ''})`,
    '',
    '| configuration | checks/s | CPU s / 1000 checks | p50 ms |',
    '|---|---|---|---|',
    ...(['1KiB', '64KiB'] as const).flatMap((s) => [row(`toolgate REST ${s}`, `b/rest/${s}`), row(`toolgate MCP ${s}`, `b/mcp/${s}`), row(`plugin REST ${s}`, `d/rest/${s}`), row(`plugin MCP ${s}`, `d/mcp/${s}`)]),
    '',
    `toolgate MCP / REST at 1 KiB: CPU ${ratio('b/mcp/1KiB', 'b/rest/1KiB', 'cpu_s_per_1000')}x, p50 ${ratio('b/mcp/1KiB', 'b/rest/1KiB', 'p50_ms')}x.`,
    `toolgate / plugin, MCP 1 KiB: CPU ${ratio('b/mcp/1KiB', 'd/mcp/1KiB', 'cpu_s_per_1000')}x. 64 KiB checks/s toolgate/plugin: REST ${ratio('b/rest/64KiB', 'd/rest/64KiB', 'rps')}x, MCP ${ratio('b/mcp/64KiB', 'd/mcp/64KiB', 'rps')}x.`,
  ].join('\n');
}

async function writeBodies(dir: string): Promise<Record<Protocol, Record<Size, string>>> {
  const out: Record<Protocol, Record<Size, string>> = { rest: { '1KiB': '', '64KiB': '' }, mcp: { '1KiB': '', '64KiB': '' } };
  for (const [s, size] of [['1KiB', 1024], ['64KiB', 64 * 1024]] as const) {
    // The same arguments (size bytes of JSON) in both; MCP wraps them in its JSON-RPC envelope.
    const args = { message: 'x'.repeat(size - '{"message":""}'.length) };
    out.rest[s] = join(dir, `rest-${s}.json`);
    out.mcp[s] = join(dir, `mcp-${s}.json`);
    await writeFile(out.rest[s], JSON.stringify(args));
    await writeFile(out.mcp[s], JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: args } }));
  }
  return out;
}

await main();
