import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe } from 'vitest';
import { ensurePythonMcp } from '../../src/toolchain/python-mcp.js';
import { catalogWithSleepTimeout, mcpScenarios, type McpTarget } from './mcp-scenarios.js';
import { startStack, type Stack } from './stack.js';

const SLEEP_TIMEOUT_S = 3;

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
    const python = await ensurePythonMcp();
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const catalogPath = await catalogWithSleepTimeout(await mkdtemp(join(tmpdir(), 'toolgate-mcp-local-')), SLEEP_TIMEOUT_S);
    stack = await startStack({ engine: 'embedded', executor: 'local', maxInFlight: 24, audit: true, catalogPath });
    const executorPid = stack.executor?.pid as number;
    target = {
      stack,
      jwt: await stack.jwtFor('ops-bot'),
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
});
