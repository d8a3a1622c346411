import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './install.js';
import { VERSIONS } from './versions.js';

/**
 * Offline schema validation of Kubernetes manifests: the PyPI package kubernetes-validate ships the
 * OpenAPI-derived JSON schemas of each Kubernetes release, so no schema is fetched at validation time.
 * Installed once into a virtualenv under the cache.
 */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

export async function ensureKubernetesValidate(): Promise<string> {
  const v = VERSIONS.kubernetesValidate;
  const venv = join(CACHE_DIR, `kubernetes-validate-${v}`);
  const bin = join(venv, 'bin', 'kubernetes-validate');
  if (existsSync(bin)) return bin;
  process.stderr.write(`[toolchain] installing kubernetes-validate ${v} from PyPI (first time only)\n`);
  rmSync(venv, { recursive: true, force: true });
  try {
    await run('python3', ['-m', 'venv', venv]);
    await run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `kubernetes-validate==${v}`]);
  } catch (err) {
    rmSync(venv, { recursive: true, force: true });
    throw err;
  }
  return bin;
}
