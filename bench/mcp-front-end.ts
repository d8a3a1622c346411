/**
 * The executor's own cost of MCP over REST, without the noise of a sandbox: the executor in this process with
 * a runner that answers at once (a test double: what is measured is the front end, not the tool), called
 * directly with the headers and attestation the authz server would add. 200 sequential calls each of REST
 * `POST /v1/tools/echo` and MCP `tools/call` (one session, SSE answer), interleaved in rounds. The full path
 * through Envoy and the authz server, with the real sandbox, is bench/call-path.ts (configurations local, mcp).
 *
 *   npm run bench:mcp-front-end [-- --calls 200]
 */
import { writeFile } from 'node:fs/promises';

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startExecutor } from '../src/executor/app.js';
import { parseExecutorConfig } from '../src/executor/config.js';
import type { Runner, ToolInvocation, ToolOutcome } from '../src/executor/runners/runner.js';
import { attest } from '../src/shared/decision-attestation.js';
import { createLogger } from '../src/shared/logger.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { attestingFetch } from '../test/support/attesting-fetch.js';
import { summarize } from './stats.js';
import { benchRunDir } from './lib/bench-run-dir.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 200);
const ROUNDS = 4;
const KEY = Buffer.from('b'.repeat(48));

/** Test double: the no-op tool's result, at once. */
class InstantRunner implements Runner {
  readonly kind = 'local' as const;
  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    inv.observe?.({ kind: 'sandbox.started' });
    return { status: 'succeeded', result: { message: inv.arguments.message, length: String(inv.arguments.message).length }, durationMs: 0 };
  }
  async close(): Promise<void> {}
}

async function main(): Promise<void> {
  const dir = benchRunDir('mcp-front-end');
  await writeFile(join(dir, 'decision.key'), KEY);
  const config = parseExecutorConfig(
    JSON.stringify({ http: { address: '127.0.0.1:0' }, ops: { address: '127.0.0.1:0' }, catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), decision_key_file: 'decision.key' }),
    join(dir, 'executor.yaml'),
  );
  process.env.TOOLGATE_LOG_LEVEL ??= 'warn';
  const executor = await startExecutor(config, { runner: new InstantRunner(), log: createLogger('bench-executor') });
  const base = `http://127.0.0.1:${executor.port}`;
  try {
    const rest = async (): Promise<number> => {
      const body = JSON.stringify({ message: 'ping' });
      const decisionId = `bench-${performance.now()}-${Math.random()}`;
      const headers = {
        'content-type': 'application/json',
        'x-toolgate-decision-id': decisionId,
        'x-toolgate-agent-id': 'ops-bot',
        'x-toolgate-agent-auth': 'jwt',
        'x-toolgate-tool': 'echo',
        'x-toolgate-policy-revision': 'bench',
        'x-toolgate-attestation': attest(KEY, { decisionId, agentId: 'ops-bot', agentMethod: 'jwt', tool: 'echo', policyRevision: 'bench', body: Buffer.from(body) }),
      };
      const t0 = performance.now();
      const res = await fetch(`${base}/v1/tools/echo`, { method: 'POST', headers, body });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`REST call failed: ${res.status} ${text}`);
      return ms;
    };
    const mcpFetch = attestingFetch({ key: KEY, visibleTools: ['echo'] });
    const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const init = await mcpFetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) });
    const session = init.headers.get('mcp-session-id') as string;
    await init.text();
    let id = 1;
    const mcp = async (): Promise<number> => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'ping' } } });
      const t0 = performance.now();
      const res = await mcpFetch(`${base}/mcp`, { method: 'POST', headers: { ...mcpHeaders, 'mcp-session-id': session }, body });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200 || !text.includes('"structuredContent"')) throw new Error(`MCP call failed: ${res.status} ${text}`);
      return ms;
    };
    const timers: Record<string, () => Promise<number>> = { rest, mcp };
    const samples: Record<string, number[]> = { rest: [], mcp: [] };
    for (const t of Object.values(timers)) for (let i = 0; i < 20; i++) await t(); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, t] of Object.entries(timers)) for (let i = 0; i < Math.ceil(CALLS / ROUNDS); i++) (samples[name] as number[]).push(await t());
    }
    const r = summarize(samples.rest as number[]);
    const m = summarize(samples.mcp as number[]);
    const lines = [
      `# Executor front end: MCP tools/call vs REST, no-op runner (${r.n} sequential calls each)`,
      '',
      '| front end | p50 ms | p90 ms | p99 ms | mean ms |',
      '|---|---|---|---|---|',
      `| REST | ${r.p50} | ${r.p90} | ${r.p99} | ${r.mean} |`,
      `| MCP | ${m.p50} | ${m.p90} | ${m.p99} | ${m.mean} |`,
      '',
      `MCP over REST: p50 ${(m.p50 - r.p50).toFixed(3)} ms, p99 ${(m.p99 - r.p99).toFixed(3)} ms (includes the attesting client's own work, the same for both).`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await executor.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
