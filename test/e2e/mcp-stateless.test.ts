import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
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
 * Mcp-Method / Mcp-Name) through the real Envoy, with the Python `mcp` SDK 2.3.0's unified Client, which
 * speaks it. toolgate's own server (`/mcp`, the executor on @modelcontextprotocol/sdk 1.32.2) does not: a
 * probing client (server/discover) falls back to the initialize handshake there, and works.
 * Not shown here (see docs/agents.md): the same client against an upstream that speaks 2026-07-28.
 */
describe('MCP 2026-07-28 (stateless) through the gateway', () => {
  let stack: Stack;
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
    const bundle = await buildSeedBundle(dir, 'mcp-stateless', await policiesWithData(dir, 'mcp-policies', { authorized_agents: ['ops-bot'] }));
    stack = await startStack({ engine: 'embedded', executor: 'local', bundle: { file: bundle } });
    jwt = await signAgentJwt(stack.creds, { sub: 'ops-bot' }, { audience: `http://127.0.0.1:${stack.envoyHttpPort}/mcp` });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const url = (): string => `http://127.0.0.1:${stack.envoyHttpPort}/mcp`;

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
