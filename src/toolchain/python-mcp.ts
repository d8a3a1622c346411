import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './install.js';
import { VERSIONS } from './versions.js';

/**
 * The Python MCP SDK (PyPI `mcp`), the second official client the MCP tests drive through the gateway.
 * Installed once into a virtualenv under the cache, keyed by version; returns the venv's python.
 */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

export async function ensurePythonMcp(): Promise<string> {
  const v = VERSIONS.pythonMcp;
  const venv = join(CACHE_DIR, `python-mcp-${v}`);
  const python = join(venv, 'bin', 'python');
  // The marker is written last: a venv left half-installed by an interrupted run is rebuilt.
  const done = join(venv, '.installed');
  if (existsSync(done)) return python;
  process.stderr.write(`[toolchain] installing the Python MCP SDK (mcp ${v}) from PyPI (first time only)\n`);
  rmSync(venv, { recursive: true, force: true });
  try {
    await run('python3', ['-m', 'venv', venv]);
    await run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `mcp==${v}`]);
    await run(python, ['-c', `open(${JSON.stringify(done)}, "w").close()`]);
  } catch (err) {
    rmSync(venv, { recursive: true, force: true });
    throw err;
  }
  return python;
}
