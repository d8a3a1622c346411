import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { DECISION, type Bundles } from './configurations.js';

/** bench/policy with data of a given size (`ops-bot` plus generated agents, keyed by agent id), as wasm and rego bundles. */
export async function bundlesFor(dir: string, opa: string, agents: number): Promise<Bundles> {
  const src = join(dir, `policy-${agents}`);
  await cp(join(REPO_ROOT, 'bench', 'policy'), src, { recursive: true });
  const authorized: Record<string, boolean> = { 'ops-bot': true };
  for (let i = 1; i < agents; i++) authorized[`agent-${i}`] = true;
  await writeFile(join(src, 'data.json'), JSON.stringify({ authorized_agents: authorized }));
  const wasm = join(dir, `bundle-${agents}-wasm.tar.gz`);
  const rego = join(dir, `bundle-${agents}-rego.tar.gz`);
  await buildBundle({ opaPath: opa, sourceDir: src, outFile: wasm, revision: `bench-${agents}`, entrypoints: [DECISION], target: 'wasm' });
  await buildBundle({ opaPath: opa, sourceDir: src, outFile: rego, revision: `bench-${agents}`, target: 'rego' });
  return { wasm, rego };
}

/**
 * bench/policy made to read input.history the way the example loop guard does (a limit never reached, so
 * every check is still allowed): the same decision with and without the store round trip.
 */
export async function historyBundleFor(dir: string, opa: string): Promise<string> {
  const src = join(dir, 'policy-history');
  await cp(join(REPO_ROOT, 'bench', 'policy'), src, { recursive: true });
  await writeFile(join(src, 'data.json'), JSON.stringify({ authorized_agents: { 'ops-bot': true } }));
  const rego = join(src, 'authz.rego');
  const text = (await readFile(rego, 'utf8')).replaceAll('data.authorized_agents[claims.sub]', 'data.authorized_agents[claims.sub]\n\tnot looping');
  await writeFile(rego, `${text}\nlooping if input.history.same_arguments["1m"] > 1000000000\n`);
  const wasm = join(dir, 'bundle-history-wasm.tar.gz');
  await buildBundle({ opaPath: opa, sourceDir: src, outFile: wasm, revision: 'bench-history', entrypoints: [DECISION], target: 'wasm' });
  return wasm;
}
