/**
 * What the answer check of upstream MCP answers (src/authz/mcp-lists/upstream-answer-guard.ts) costs an
 * allowed tools/call through the real Envoy: the same stack behind two Envoys, one with the check (this
 * config) and one whose upstream POST route has ext_proc off (as before the check), calling a test double
 * that answers at once, as JSON (headers, then the body, go to ext_proc) and as an event stream (headers
 * only). Sequential calls, interleaved in rounds; a direction, not a figure for a loaded machine.
 *
 *   npm run bench:mcp-upstream-answers [-- --calls 400]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify as toYaml } from 'yaml';
import { signAgentJwt } from '../src/gateway/dev-credentials.js';
import { buildSeedBundle, policiesWithData, startStack } from '../test/e2e/stack.js';
import { startEnvoy } from '../test/support/envoy-process.js';
import { startGarbageMcpUpstream } from '../test/support/garbage-mcp-upstream.js';
import { freePort } from '../test/support/managed-process.js';
import { benchRunDir } from './lib/bench-run-dir.js';
import { summarize } from './stats.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CALLS = arg('calls', 400);
const ROUNDS = 4;

async function main(): Promise<void> {
  const dir = benchRunDir('mcp-upstream-answers');
  const upstream = await startGarbageMcpUpstream();
  const registry = { apiVersion: 'toolgate.dev/v1', kind: 'McpServers', servers: [{ name: 'answers', url: upstream.url, timeout_seconds: 10, tools: { echo: { action: 'invoke', resource: 'echo' } } }] };
  const registryPath = join(dir, 'mcp-servers.yaml');
  await writeFile(registryPath, toYaml(registry));
  const bundle = await buildSeedBundle(dir, 'bench', await policiesWithData(dir, 'policies', { authorized_agents: ['ops-bot'] }));
  const stack = await startStack({ engine: 'embedded', bundle: { file: bundle }, mcpServersPath: registryPath });
  try {
    const jwt = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
    // "Before": the same config with the answer check off on the upstream POST route, on other ports.
    const config = await readFile(join(stack.dir, 'envoy.yaml'), 'utf8');
    const off = config.replace(/overrides: \{ processing_mode: \{ request_header_mode: SKIP, response_header_mode: SEND[^\n]*/g, 'disabled: true');
    if (off === config) throw new Error('the answer check is not in the rendered Envoy config');
    const [http, mtls, admin] = [await freePort(), await freePort(), await freePort()];
    const ports: Record<number, number> = { [stack.envoyHttpPort]: http, [stack.envoyMtlsPort]: mtls, [stack.envoyAdminPort]: admin };
    const offPath = join(dir, 'envoy-without-answer-check.yaml');
    await writeFile(offPath, off.replace(/port_value: (\d+)/g, (m, p: string) => (ports[Number(p)] ? `port_value: ${ports[Number(p)]}` : m)));
    const before = await startEnvoy({ configPath: offPath, logDir: dir, adminPort: admin, name: 'envoy-without-answer-check' });
    try {
      const targets = { checked: stack.envoyHttpPort, unchecked: http };
      const samples: Record<string, number[]> = {};
      let id = 0;
      const one = async (port: number, answer: string): Promise<number> => {
        const t0 = performance.now();
        const res = await fetch(`http://127.0.0.1:${port}/mcp/answers`, {
          method: 'POST',
          headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: { answer } } }),
        });
        const text = await res.text();
        if (res.status !== 200 || !text.includes('good answer')) throw new Error(`unexpected answer ${res.status}: ${text.slice(0, 200)}`);
        return performance.now() - t0;
      };
      for (const [name, port] of Object.entries(targets)) for (const answer of ['good', 'stream']) await one(port, answer); // warm up
      for (let r = 0; r < ROUNDS; r++) {
        for (const [name, port] of Object.entries(targets)) {
          for (const answer of ['good', 'stream']) {
            const key = `${name} ${answer === 'good' ? 'json' : 'sse'}`;
            for (let i = 0; i < CALLS / ROUNDS; i++) (samples[key] ??= []).push(await one(port, answer));
          }
        }
      }
      const report = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)]));
      process.stdout.write(`${JSON.stringify({ calls_per_case: CALLS, latency_ms: report }, null, 2)}\n`);
    } finally {
      await before.stop();
    }
  } finally {
    await stack.stop();
    await upstream.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
