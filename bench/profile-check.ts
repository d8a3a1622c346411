/**
 * Where the check path spends its CPU: runs toolgate's authz server (embedded engine) under `node --cpu-prof`
 * behind the real Envoy, drives it with h2load, and prints the functions with the most self time, grouped by
 * module. Used to find what dominates before the check-path benchmark is reported.
 *
 *   npm run bench:profile-check [-- --requests 30000 --body-bytes 65536 --mcp]
 *
 * `--mcp`: the same arguments as one MCP tools/call (POST /mcp, JSON-RPC) instead of the REST call.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';

import { join, relative } from 'node:path';
import { ensureDevCredentials, signAgentJwt } from '../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { ensureEnvoy, ensureOpa } from '../src/toolchain/install.js';
import { stopAll } from '../test/support/managed-process.js';
import { BENCH_MCP_RESOURCE, startConfig, startUpstream } from './lib/configurations.js';
import { h2load } from './lib/h2load.js';
import { bundlesFor } from './lib/bench-bundles.js';
import { benchRunDir } from './lib/bench-run-dir.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

async function main(): Promise<void> {
  const dir = benchRunDir('profile-check');
  const arg = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? fallback : Number(process.argv[i + 1]);
  };
  const requests = arg('requests', 30_000);
  const bodyBytes = arg('body-bytes', 0);
  const [, opa] = await Promise.all([ensureEnvoy(), ensureOpa()]);
  const profDir = join(dir, 'prof');
  const creds = await ensureDevCredentials(join(dir, 'creds'));
  const mcp = process.argv.includes('--mcp');
  const jwt = await signAgentJwt(creds, { sub: 'ops-bot' }, mcp ? { audience: BENCH_MCP_RESOURCE } : {});
  const upstream = await startUpstream(dir);
  const body = join(dir, 'body.json');
  const args = { message: bodyBytes > 0 ? 'x'.repeat(bodyBytes) : 'restart the api deployment in staging' };
  await writeFile(body, JSON.stringify(mcp ? { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: args } } : args));
  const c = await startConfig('b', { dir, tag: 'profile', creds, upstreamPort: upstream.port, bins: { opa, opaEnvoyPlugin: '' }, bundles: await bundlesFor(dir, opa, 10), toolgateNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  const url = mcp ? c.url.replace('/v1/tools/echo', '/mcp') : c.url;
  const r = await h2load({ url, headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', ...(mcp ? { accept: 'application/json, text/event-stream' } : {}) }, bodyFile: body, clients: 16, requests, logFile: join(dir, 'h2load.log') });
  process.stderr.write(`${r.requests} requests, ${r.rps.toFixed(0)} req/s, ${r.status2xx} answered 200\n`);
  await c.stop();
  await upstream.proc.stop();

  const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written in ${profDir}`);
  // The run's directory goes at exit: the profile is kept with the other results.
  const kept = join(REPO_ROOT, 'bench', 'results', 'profile-check.cpuprofile');
  await mkdir(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  await copyFile(join(profDir, file), kept);
  const profile = JSON.parse(await readFile(kept, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const hits = new Map<number, number>();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  const total = profile.samples.length;
  for (const n of profile.nodes) {
    const h = hits.get(n.id) ?? 0;
    if (h === 0) continue;
    const where = n.callFrame.url ? relative(REPO_ROOT, n.callFrame.url.replace('file://', '')) : '(native)';
    const fn = `${n.callFrame.functionName || '(anonymous)'}  ${where}:${n.callFrame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + h);
    const mod = where.startsWith('node_modules/') ? where.split('/').slice(0, where.split('/')[1]?.startsWith('@') ? 3 : 2).join('/') : where.startsWith('dist/') ? 'toolgate' : where;
    byModule.set(mod, (byModule.get(mod) ?? 0) + h);
  }
  const top = (m: Map<string, number>, k: number): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, h]) => `${((h / total) * 100).toFixed(1).padStart(5)}%  ${name}`)
      .join('\n');
  process.stdout.write(`# self time by module (${total} samples)\n${top(byModule, 15)}\n\n# self time by function\n${top(byFunction, 30)}\n\nprofile: ${kept}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
