import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { VERSIONS } from '../../../src/toolchain/versions.js';

const run = promisify(execFile);

/** One of OPA's YAML test cases (v1/test/cases in the OPA module), the fields the conformance run reads. */
export interface OpaTestCase {
  family: string;
  file: string;
  note: string;
  query: string;
  modules: string[];
  data?: unknown;
  input?: unknown;
  wantResult?: Record<string, unknown>[];
  wantDefined?: boolean;
  wantErrorCode?: string;
  wantError?: string;
  strictError: boolean;
}

/**
 * The directory of OPA's YAML cases in the Go module cache, for the OPA version the project installs.
 * The module is downloaded into the cache (not into the project) when absent.
 */
export async function opaCasesDir(): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOMODCACHE']);
  const dir = join(stdout.trim(), `github.com/open-policy-agent/opa@${VERSIONS.opa}`, 'v1', 'test', 'cases', 'testdata', 'v1');
  if (!existsSync(dir)) await run('go', ['mod', 'download', `github.com/open-policy-agent/opa@${VERSIONS.opa}`], { cwd: '/' });
  if (!existsSync(dir)) throw new Error(`OPA's test cases are not at ${dir}`);
  return dir;
}

interface RawCase {
  note: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  want_result?: Record<string, unknown>[];
  want_defined?: boolean;
  want_error_code?: string;
  want_error?: string;
  strict_error?: boolean;
}

export async function loadFamily(casesDir: string, family: string): Promise<OpaTestCase[]> {
  const dir = join(casesDir, family);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  const out: OpaTestCase[] = [];
  for (const file of files) {
    // OPA's loader reads numbers as json.Number; "intAsBigInt" keeps 19-digit nanosecond values exact
    const doc = parseYaml(await readFile(join(dir, file), 'utf8'), { intAsBigInt: true }) as { cases?: RawCase[] };
    for (const c of doc.cases ?? []) {
      out.push({
        family,
        file,
        note: c.note,
        query: c.query.trim(),
        modules: c.modules ?? [],
        ...(c.data !== undefined && c.data !== null ? { data: c.data } : {}),
        ...(c.input !== undefined ? { input: c.input } : {}),
        ...(c.want_result !== undefined ? { wantResult: c.want_result } : {}),
        ...(c.want_defined !== undefined ? { wantDefined: c.want_defined } : {}),
        ...(c.want_error_code !== undefined ? { wantErrorCode: c.want_error_code } : {}),
        ...(c.want_error !== undefined ? { wantError: c.want_error } : {}),
        strictError: c.strict_error === true,
      });
    }
  }
  return out;
}

/** `data.a.b = x; data.c = y` -> [['a/b', 'x'], ['c', 'y']]; undefined for other query shapes. */
export function entrypointsOf(query: string): [string, string][] | undefined {
  const parts = query.split(/;|\n/).map((p) => p.trim()).filter(Boolean);
  const out: [string, string][] = [];
  for (const p of parts) {
    const m = /^data\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*=\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(p);
    if (!m) return undefined;
    out.push([(m[1] as string).replaceAll('.', '/'), m[2] as string]);
  }
  return out.length > 0 ? out : undefined;
}
