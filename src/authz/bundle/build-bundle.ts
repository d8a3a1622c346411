import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface BuildBundleOptions {
  opaPath: string;
  sourceDir: string;
  outFile: string;
  revision: string;
  /** Wasm entrypoints; the default is the whole `agent/authz` package (allow, deny and reasons in one evaluation). */
  entrypoints?: string[];
  /** wasm (default) for the embedded engine; rego for an OPA server (which needs no compiled module). */
  target?: 'wasm' | 'rego';
  /** Sign as `opa build --bundle --signing-key` does (bundle mode: file names relative to sourceDir). */
  signing?: { keyFile: string; algorithm?: string; keyId?: string; claimsFile?: string };
}

/** `opa build -t wasm`: the bundle format security teams serve and the embedded engine evaluates. */
export async function buildBundle(opts: BuildBundleOptions): Promise<void> {
  const entrypoints = opts.entrypoints ?? ['agent/authz'];
  const target = opts.target === 'rego' ? [] : ['-t', 'wasm', ...entrypoints.flatMap((e) => ['-e', e])];
  const s = opts.signing;
  const signing = s
    ? ['--bundle', '--signing-key', s.keyFile, '--signing-alg', s.algorithm ?? 'RS256', ...(s.keyId ? ['--verification-key-id', s.keyId] : []), ...(s.claimsFile ? ['--claims-file', s.claimsFile] : [])]
    : [];
  // Bundle mode names files by the path given: build from inside the directory so no server path is signed in.
  const args = ['build', ...target, ...signing, '--revision', opts.revision, '--ignore', '*_test.rego', '-o', resolve(opts.outFile), s ? '.' : opts.sourceDir];
  try {
    await run(opts.opaPath, args, { maxBuffer: 16 * 1024 * 1024, ...(s ? { cwd: opts.sourceDir } : {}) });
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`opa build failed for ${opts.sourceDir}: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
}
