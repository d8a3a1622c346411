import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import type { Response } from './stack.js';

/** A copy of policies/ with extra files (Rego, data) added or replaced: bundles that differ from the seed in one way. */
export async function policiesWith(dir: string, name: string, files: Record<string, string>): Promise<string> {
  const target = join(dir, name);
  await mkdir(target, { recursive: true });
  await cp(join(REPO_ROOT, 'policies'), target, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(target, path, '..'), { recursive: true });
    await writeFile(join(target, path), content);
  }
  return target;
}

/** Two complete definitions of one rule with different values: loads, then fails on every evaluation. */
export const CONFLICT_ALWAYS = `package agent.authz

conflict := concat("", ["a", input.agent_id])
conflict := concat("", ["b", input.agent_id])
`;

/** The same conflict, only for one argument value no example, recorded input or probe carries. */
export const CONFLICT_ON_BOOM = `package agent.authz

conflict := "a" if input.tool_call.arguments.name == "boom"
conflict := "b" if input.tool_call.arguments.name == "boom"
`;

/** The candidate a security team wants to roll out: scaling above 5 replicas is no longer allowed. */
export const CAP_AT_5 = `package agent.authz

deny if {
    input.tool_call.tool == "k8s_scale_deployment"
    input.desired_replicas > 5
}

reasons contains "scaling above 5 replicas needs a change request" if {
    input.tool_call.tool == "k8s_scale_deployment"
    input.desired_replicas > 5
}
`;

export async function waitFor(cond: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not met within ${timeoutMs} ms`);
}

export async function metricValue(httpPort: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** The policy revision that decided a call to the echo tool: the trusted header echoed on 200, the deny body's field otherwise. */
export function answeredRevision(res: Response): string | undefined {
  return res.status === 200 ? JSON.parse(res.text).echo.headers['x-toolgate-policy-revision'] : res.json?.error?.policy_revision;
}
