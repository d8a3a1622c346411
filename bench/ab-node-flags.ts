/**
 * A/B for tuning the authz server on the check path: (b) as is vs (b) with extra Node flags and/or
 * environment, alternated: saturation at fixed concurrency, then (with --rate) latency at that fixed rate over
 * one connection. For tuning decisions, not for the report.
 * (Tried on 2 cores: --max-semi-space-size=64 cost ~10% of checks/s against the default; --single-threaded-gc
 * made no difference; deciding checks from an immediate saved 13% CPU per check.)
 *
 *   node dist/bench/ab-node-flags.js [--flags "--max-semi-space-size=16"] [--env "NAME=value"] [--rounds 4 --clients 16 --rate 200]
 */
import { writeFile } from 'node:fs/promises';

import { join } from 'node:path';
import { ensureDevCredentials, signAgentJwt } from '../src/gateway/dev-credentials.js';
import { ensureEnvoy, ensureOpa } from '../src/toolchain/install.js';
import { stopAll } from '../test/support/managed-process.js';
import { bundlesFor } from './lib/bench-bundles.js';
import { startConfig, startUpstream } from './lib/configurations.js';
import { h2load } from './lib/h2load.js';
import { usageOf } from './lib/process-usage.js';
import { summarize } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

const argOf = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] as string);
};

async function main(): Promise<void> {
  const dir = benchRunDir('ab');
  const flags = argOf('flags', '').split(' ').filter((f) => f);
  const env = Object.fromEntries(argOf('env', '').split(' ').filter((e) => e.includes('=')).map((e) => e.split('=') as [string, string]));
  const rounds = Number(argOf('rounds', '4'));
  const clients = Number(argOf('clients', '16'));
  const rate = Number(argOf('rate', '0'));
  const [, opa] = await Promise.all([ensureEnvoy(), ensureOpa()]);
  const creds = await ensureDevCredentials(join(dir, 'creds'));
  const jwt = await signAgentJwt(creds, { sub: 'ops-bot' });
  const upstream = await startUpstream(dir);
  const body = join(dir, 'body.json');
  await writeFile(body, JSON.stringify({ message: 'restart the api deployment in staging' }));
  const bundles = await bundlesFor(dir, opa, 10);
  const base = { dir, creds, upstreamPort: upstream.port, bins: { opa, opaEnvoyPlugin: '' }, bundles };
  const variants = { without: await startConfig('b', { ...base, tag: 'a' }), with: await startConfig('b', { ...base, tag: 'b', toolgateNodeArgs: flags, toolgateEnv: env }) };
  const spec = (url: string, requests: number) => ({ url, headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, bodyFile: body, clients, requests, logFile: join(dir, 'h.log') });
  for (const v of Object.values(variants)) await h2load(spec(v.url, 5000));
  // Envoy's CPU is reported too: what the authz server answers (and how) also costs the proxy.
  const out: Record<string, { rps: number[]; cpu: number[]; envoyCpu: number[]; p50: number[]; p99: number[] }> = {
    without: { rps: [], cpu: [], envoyCpu: [], p50: [], p99: [] },
    with: { rps: [], cpu: [], envoyCpu: [], p50: [], p99: [] },
  };
  for (let r = 0; r < rounds; r++) {
    for (const k of (r % 2 ? ['with', 'without'] : ['without', 'with']) as ('with' | 'without')[]) {
      const v = variants[k];
      const before = usageOf(v.authzPids).cpuSeconds;
      const envoyBefore = usageOf([v.envoyPid]).cpuSeconds;
      const res = await h2load(spec(v.url, 20000));
      const perThousand = (seconds: number): number => Math.round((seconds / res.requests) * 1e6) / 1000;
      out[k]?.rps.push(Math.round(res.rps));
      out[k]?.cpu.push(perThousand(usageOf(v.authzPids).cpuSeconds - before));
      out[k]?.envoyCpu.push(perThousand(usageOf([v.envoyPid]).cpuSeconds - envoyBefore));
      if (rate > 0) {
        const fixed = summarize((await h2load({ ...spec(v.url, 0), clients: 1, rate, seconds: 8 })).latenciesMs);
        out[k]?.p50.push(fixed.p50);
        out[k]?.p99.push(fixed.p99);
      }
    }
  }
  process.stdout.write(`${JSON.stringify({ flags, env, ...out })}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
