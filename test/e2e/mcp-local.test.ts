import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startBearerProxy } from '../support/mcp/bearer-proxy.js';
import { ensureMcpPython } from '../support/mcp-python.js';
import { catalogWithSleepTimeout, mcpJwt, mcpScenarios, type McpTarget } from './mcp-scenarios.js';
import { startStack, type Stack } from './stack.js';

/** Room for a sandbox to start on a loaded 2-core machine (seconds at times) before a 1 s sleep. */
const SLEEP_TIMEOUT_S = 6;
const run = promisify(execFile);

/** Pids of the executor's sandboxes running the sleep tool (bwrap, started by the executor, TOOL_NAME=sleep). */
async function sandboxesOf(executorPid: number, tool: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== executorPid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`\0TOOL_NAME\0${tool}\0`)) n++;
    } catch {
      // the process ended while we looked
    }
  }
  return n;
}

describe('MCP through Envoy with the local sandbox runner', () => {
  let stack: Stack;
  let target: McpTarget;

  beforeAll(async () => {
    const python = await ensureMcpPython();
    const catalogPath = await catalogWithSleepTimeout(await mkdtemp(join(tmpdir(), 'toolgate-mcp-local-')), SLEEP_TIMEOUT_S);
    stack = await startStack({ engine: 'embedded', executor: 'local', maxInFlight: 24, maxInFlightPerAgent: 24, audit: true, catalogPath });
    const executorPid = stack.executor?.pid as number;
    target = {
      stack,
      jwt: await mcpJwt(stack, 'ops-bot'),
      runner: 'local',
      python,
      runningSleeps: () => sandboxesOf(executorPid, 'sleep'),
      toolProcesses: async () => 0,
      sleepTimeoutSeconds: SLEEP_TIMEOUT_S,
    };
  });
  afterAll(async () => {
    await stack?.stop();
  });

  mcpScenarios(() => target);

  /**
   * The MCP conformance suite (@modelcontextprotocol/conformance, server mode) against the gateway's /mcp,
   * every server scenario that applies to toolgate. The others need what toolgate does not serve, by design
   * (docs/agents.md lists them and why): the suite's own test tools (test_simple_text, test_tool_with_progress,
   * ...), resources, prompts, completions, logging, sampling and elicitation. The suite's client cannot send
   * credentials, so a loopback proxy adds the agent's JWT (test/support/mcp/bearer-proxy.ts).
   */
  const CONFORMANCE_SCENARIOS = ['server-initialize', 'ping', 'tools-list', 'server-sse-multiple-streams', 'dns-rebinding-protection'];
  it.each(CONFORMANCE_SCENARIOS)('MCP conformance: %s passes', async (scenario) => {
    const proxy = await startBearerProxy({ host: '127.0.0.1', port: stack.envoyHttpPort }, target.jwt);
    const out = await mkdtemp(join(tmpdir(), 'toolgate-mcp-conformance-'));
    try {
      const cli = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
      const r = await run(process.execPath, [cli, 'server', '--url', `${proxy.url}/mcp`, '--scenario', scenario, '-o', out], { timeout: 120_000 }).then(
        (ok) => ({ code: 0, stdout: ok.stdout }),
        (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, stdout: err.stdout ?? '' }),
      );
      expect(r.stdout).toMatch(/Passed: (\d+)\/\1, 0 failed/);
      expect(r.code).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});
