import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { freePort, startProcess, waitForTcp, type ManagedProcess } from '../support/managed-process.js';
import { ensureMcpPython } from '../support/mcp-python.js';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

interface ModernRun {
  protocol_version?: string;
  tools?: string[];
  text?: string;
  requests?: Record<string, string>[];
  error?: string;
}

/**
 * MCP revision 2026-07-28 (stateless: no initialize, no session; each request names its method in
 * Mcp-Method / Mcp-Name) through the real Envoy, with the Python `mcp` SDK 2.3.0, which speaks it on both
 * sides: its unified Client, and its own MCPServer as an upstream (`/mcp/modern`). toolgate's own server
 * (`/mcp`, the executor on @modelcontextprotocol/sdk 1.32.2) does not speak that revision: a probing client
 * (server/discover) falls back to the initialize handshake there, and works.
 */
describe('MCP 2026-07-28 (stateless) through the gateway', () => {
  let stack: Stack;
  let upstream: ManagedProcess;
  let python: string;
  let jwt: string;

  const runClient = async (url: string, mode: string): Promise<ModernRun> => {
    const script = join(REPO_ROOT, 'test', 'support', 'mcp_python_modern_client.py');
    const { stdout } = await run(python, [script, url, jwt, mode], { timeout: 90_000, maxBuffer: 4 * 1024 * 1024 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as ModernRun;
  };

  beforeAll(async () => {
    python = await ensureMcpPython();
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-mcp-stateless-'));
    const port = await freePort();
    upstream = startProcess({ name: 'mcp-python-modern-server', command: python, args: [join(REPO_ROOT, 'test', 'support', 'mcp_python_modern_server.py'), String(port)], logDir: dir });
    await waitForTcp(port, { process: upstream, timeoutMs: 60_000 });
    const registry = { apiVersion: 'toolgate.dev/v1', kind: 'McpServers', servers: [{ name: 'modern', url: `http://127.0.0.1:${port}/mcp`, timeout_seconds: 30, tools: { echo: { action: 'invoke', resource: 'echo' } } }] };
    const registryPath = join(dir, 'mcp-servers.yaml');
    await writeFile(registryPath, toYaml(registry));
    const bundle = await buildSeedBundle(dir, 'mcp-stateless', await policiesWithData(dir, 'mcp-policies', { authorized_agents: ['ops-bot'] }));
    stack = await startStack({ engine: 'embedded', executor: 'local', bundle: { file: bundle }, mcpServersPath: registryPath });
    jwt = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  const url = (server?: string): string => `http://127.0.0.1:${stack.envoyHttpPort}/mcp${server ? `/${server}` : ''}`;

  it('a client pinned to 2026-07-28 lists and calls an upstream that speaks it: no initialize, no session, every request decided', async () => {
    const r = await runClient(url('modern'), '2026-07-28');
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ protocol_version: '2026-07-28', tools: ['echo'], text: 'stateless hello' });
    expect(r.requests?.map((h) => h['mcp-method'])).toEqual(['tools/list', 'tools/call']);
    expect(r.requests?.[1]).toMatchObject({ 'mcp-name': 'echo', 'mcp-protocol-version': '2026-07-28' });
    expect(r.requests?.every((h) => h['mcp-session-id'] === undefined)).toBe(true);
  });

  it('a probing client (auto) finds 2026-07-28 at the upstream through server/discover', async () => {
    const r = await runClient(url('modern'), 'auto');
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ protocol_version: '2026-07-28', text: 'stateless hello' });
    expect(r.requests?.[0]?.['mcp-method']).toBe('server/discover');
  });


  it("toolgate's own /mcp: a probing client falls back to the initialize handshake and works", async () => {
    const r = await runClient(url(), 'auto');
    expect(r.error).toBeUndefined();
    expect(r.protocol_version).toBe('2025-11-25');
    expect(r.tools).toContain('echo');
    expect(r.text).toContain('stateless hello');
    // The probe went first, as that revision's own request; then the handshake, with a session.
    expect(r.requests?.[0]).toMatchObject({ 'mcp-method': 'server/discover', 'mcp-protocol-version': '2026-07-28' });
    expect(r.requests?.some((h) => h['mcp-session-id'] !== undefined)).toBe(true);
  });
});
