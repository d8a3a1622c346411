/**
 * The check path in process, without Envoy or gRPC: CheckService.check on the same CheckRequest over and
 * over, REST and MCP tools/call (server `toolgate`, attested), with bench/policy on the embedded engine.
 * Prints CPU µs per check per protocol, alternating the order. For finding what an MCP check pays that a
 * REST check does not; the figures to report come from bench:mcp-check-path (through Envoy).
 *
 *   npm run bench:check-inprocess [-- --bytes 1024 --checks 20000 --rounds 5 --only rest|mcp]
 *
 * Each check is followed by one turn of the event loop, so its deferred recording (log line, metrics, span)
 * runs and is measured as under gRPC; a tight await loop would leave every setImmediate pending until the
 * end and measure a growing heap instead.
 */
import { join } from 'node:path';
import { CheckService } from '../src/authz/check-service.js';
import { loadBundleFile } from '../src/authz/bundle/bundle.js';
import type { CheckRequest } from '../src/authz/grpc/check-types.js';
import { jsonToStruct } from '../src/authz/grpc/struct.js';
import { DEFAULT_IDENTITY_OPTIONS } from '../src/authz/input/agent-identity.js';
import { AuthzMetrics } from '../src/authz/observability/metrics.js';
import { WasmPolicyEngine } from '../src/authz/policy/wasm-engine.js';
import { loadToolCatalogFile } from '../src/catalog/tool-catalog.js';
import { createLogger } from '../src/shared/logger.js';
import { REPO_ROOT } from '../src/shared/repo-paths.js';
import { ensureOpa } from '../src/toolchain/install.js';
import { bundlesFor } from './lib/bench-bundles.js';
import { benchRunDir } from './lib/bench-run-dir.js';
import { DECISION } from './lib/configurations.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};

function request(path: string, protocol: string, body: unknown): CheckRequest {
  return {
    attributes: {
      source: { address: { socket_address: { address: '127.0.0.1', port_value: 5555 } } },
      destination: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } },
      request: { http: { id: 'r', method: 'POST', host: '127.0.0.1:8080', scheme: 'http', protocol: 'HTTP/2', headers: { ':authority': '127.0.0.1:8080', ':method': 'POST', ':path': path, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-request-id': 'a-request-id-of-the-usual-length-000000' }, path, raw_body: Buffer.from(JSON.stringify(body)) } },
      context_extensions: protocol === 'mcp' ? { protocol: 'mcp', mcp_server: 'toolgate' } : { protocol: 'rest' },
      metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': jsonToStruct({ jwt_payload: { sub: 'ops-bot', iss: 'toolgate-dev', aud: 'toolgate', exp: 4102444800, iat: 1700000000 } }) } },
    },
  } as CheckRequest;
}

async function main(): Promise<void> {
  const dir = benchRunDir('check-inprocess');
  const bytes = arg('bytes', 1024);
  const checks = arg('checks', 20_000);
  const rounds = arg('rounds', 5);
  // --only rest|mcp: one protocol (for a CPU profile of it alone).
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1];
  const opa = await ensureOpa();
  const bundles = await bundlesFor(dir, opa, 1000);
  const engine = new WasmPolicyEngine(DECISION);
  await engine.activate(await loadBundleFile(bundles.wasm));
  const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
  const log = createLogger('bench', () => {});
  const service = new CheckService({ mapper: { catalog, identity: DEFAULT_IDENTITY_OPTIONS }, engine, metrics: new AuthzMetrics(), log, decisionLog: log, attestationKey: Buffer.alloc(32, 7) });
  const args = { message: 'x'.repeat(bytes) };
  const reqs = {
    rest: request('/v1/tools/echo', 'rest', args),
    mcp: request('/mcp', 'mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: args } }),
  };
  for (const [name, r] of Object.entries(reqs)) {
    const res = await service.check(r, undefined);
    if (!res.ok_response) throw new Error(`${name}: not allowed: ${JSON.stringify(res.denied_response ?? res)}`.slice(0, 600));
  }
  const run = async (r: CheckRequest): Promise<number> => {
    const t = process.cpuUsage();
    for (let i = 0; i < checks; i++) {
      await service.check(r, undefined);
      // The log line, metrics and span follow each answer in the next turn (check-service.ts): let them run.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const u = process.cpuUsage(t);
    return (u.user + u.system) / checks;
  };
  const got: Record<string, number[]> = { rest: [], mcp: [] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['rest', 'mcp'] as const) : (['mcp', 'rest'] as const);
    for (const p of order) if (!only || only === p) got[p]!.push(await run(reqs[p]));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  for (const p of ['rest', 'mcp'] as const) {
    const xs = got[p]!;
    if (xs.length > 0) process.stdout.write(`${p.toUpperCase()} ${bytes} B arguments: median ${median(xs).toFixed(1)} µs CPU per check, min ${Math.min(...xs).toFixed(1)} (rounds: ${xs.map((x) => x.toFixed(1)).join(' ')})\n`);
  }
  // Under load the smallest round is the steadiest figure (the machine takes from a round, never gives).
  if (got.rest!.length > 0 && got.mcp!.length > 0) process.stdout.write(`MCP/REST: median ${(median(got.mcp!) / median(got.rest!)).toFixed(2)}, min ${(Math.min(...got.mcp!) / Math.min(...got.rest!)).toFixed(2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
