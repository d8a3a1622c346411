import { cp, writeFile } from 'node:fs/promises';
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
