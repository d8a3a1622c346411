import { execFile } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { CACHE_DIR } from '../../src/toolchain/install.js';

const run = promisify(execFile);

/** The Python MCP SDK (PyPI `mcp`), pinned: the independent client of the MCP e2e tests. */
export const MCP_PYTHON_VERSION = '2.3.0';

/**
 * A venv under the tool cache with `mcp==MCP_PYTHON_VERSION`, created on first use (python3 -m venv, pip).
 * A marker file is written only once pip succeeded, so a half-made venv is rebuilt, never used.
 */
export async function ensureMcpPython(): Promise<string> {
  const venv = join(CACHE_DIR, `mcp-python-${MCP_PYTHON_VERSION}`);
  const python = join(venv, 'bin', 'python');
  const ready = join(venv, '.toolgate-ready');
  try {
    await access(ready);
    return python;
  } catch {
    // not there yet
  }
  await rm(venv, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', venv]);
  await run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `mcp==${MCP_PYTHON_VERSION}`], { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 });
  await run(python, ['-c', `open(${JSON.stringify(ready)}, "w").write("mcp==${MCP_PYTHON_VERSION}\\n")`]);
  return python;
}

export interface PythonMcpResult {
  protocol_version?: string;
  tools?: string[];
  calls?: { name: string; is_error?: boolean; text?: string; error?: { code: number; message: string; data?: Record<string, unknown> } }[];
  error?: string;
}

/** Runs test/support/mcp_python_client.py: initialize, tools/list, then each call in one session. */
export async function runPythonMcpClient(url: string, token: string, calls: { name: string; arguments: Record<string, unknown> }[]): Promise<PythonMcpResult> {
  const python = await ensureMcpPython();
  const script = join(REPO_ROOT, 'test', 'support', 'mcp_python_client.py');
  const { stdout } = await run(python, [script, url, token, JSON.stringify(calls)], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  const last = stdout.trim().split('\n').pop() ?? '{}';
  return JSON.parse(last) as PythonMcpResult;
}
