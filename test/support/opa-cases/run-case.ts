import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as losslessStringify } from 'lossless-json';
import { loadBundleFile } from '../../../src/authz/bundle/bundle.js';
import type { JsonObject } from '../../../src/authz/input/envoy-input.js';
import { WasmPolicyEngine } from '../../../src/authz/policy/wasm-engine.js';
import { entrypointsOf, type OpaTestCase } from './load-cases.js';

const run = promisify(execFile);

/** What running a case produced: bindings (an empty list when undefined), an error, or a refusal at load. */
export type Outcome =
  | { kind: 'result'; rows: Record<string, unknown>[] }
  | { kind: 'error'; message: string }
  | { kind: 'refused'; message: string }
  | { kind: 'skipped'; reason: string };

const toJson = (v: unknown): string => losslessStringify(v) as string;

/** The case through the embedded engine: `opa build -t wasm` with one entrypoint per query term, then evaluate. */
export async function runEmbedded(c: OpaTestCase, opaPath: string, workDir: string): Promise<Outcome> {
  const eps = entrypointsOf(c.query);
  const skip = skipReason(c);
  if (skip) return { kind: 'skipped', reason: skip };
  if (!eps) return { kind: 'skipped', reason: `query is not "data.<path> = <var>": ${c.query}` };
  const src = join(workDir, 'src');
  await mkdir(src, { recursive: true });
  await Promise.all(c.modules.map((m, i) => writeFile(join(src, `m${i}.rego`), m)));
  if (c.data !== undefined) await writeFile(join(src, 'data.json'), toJson(c.data));
  const out = join(workDir, 'bundle.tar.gz');
  try {
    await run(opaPath, ['build', '-t', 'wasm', ...eps.flatMap(([ep]) => ['-e', ep]), '-o', out, src], { maxBuffer: 8 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { kind: 'error', message: `compile: ${(e.stderr || e.message).trim()}` };
  }
  const bundle = await loadBundleFile(out);
  const row: Record<string, unknown> = {};
  const skeleton = c.input === undefined ? undefined : Buffer.from(toJson(c.input));
  const inputJson = skeleton && { skeleton, byteLength: skeleton.length };
  for (const [ep, variable] of eps) {
    const engine = new WasmPolicyEngine(ep, { strictBuiltinErrors: c.strictError });
    try {
      await engine.activate(bundle);
    } catch (err) {
      const message = (err as Error).message;
      return message.includes('does not provide') ? { kind: 'refused', message } : { kind: 'error', message };
    }
    try {
      const { result } = await engine.evaluate((c.input ?? {}) as JsonObject, inputJson);
      if (result === undefined) return { kind: 'result', rows: [] };
      row[variable] = result;
    } catch (err) {
      return { kind: 'error', message: (err as Error).message };
    } finally {
      await engine.close();
    }
  }
  return { kind: 'result', rows: [row] };
}

/** The case through a real OPA server: modules and data over the REST API, each query term via /v1/data. */
export async function runOpa(c: OpaTestCase, opaUrl: string): Promise<Outcome> {
  const eps = entrypointsOf(c.query);
  const skip = skipReason(c);
  if (skip) return { kind: 'skipped', reason: skip };
  if (!eps) return { kind: 'skipped', reason: `query is not "data.<path> = <var>": ${c.query}` };
  const ids = c.modules.map((_, i) => `case-m${i}`);
  try {
    for (const [i, m] of c.modules.entries()) {
      const res = await fetch(`${opaUrl}/v1/policies/${ids[i]}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: m });
      if (!res.ok) return { kind: 'error', message: `compile: ${await res.text()}` };
    }
    const put = await fetch(`${opaUrl}/v1/data`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: toJson(c.data ?? {}) });
    if (!put.ok) return { kind: 'error', message: `data: ${await put.text()}` };
    const row: Record<string, unknown> = {};
    for (const [ep, variable] of eps) {
      const res = await fetch(`${opaUrl}/v1/data/${ep}?strict-builtin-errors=${c.strictError}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: c.input === undefined ? '{}' : `{"input":${toJson(c.input)}}`,
      });
      const body = (await res.json()) as { result?: unknown; message?: string; errors?: { message?: string }[] };
      if (!res.ok) return { kind: 'error', message: [body.message, ...(body.errors ?? []).map((e) => e.message)].filter(Boolean).join(': ') };
      if (!('result' in body)) return { kind: 'result', rows: [] };
      row[variable] = body.result;
    }
    return { kind: 'result', rows: [row] };
  } finally {
    for (const id of ids) await fetch(`${opaUrl}/v1/policies/${id}`, { method: 'DELETE' });
  }
}

/** Cases that need OPA's Go test harness itself (its extra `test.sleep` builtin), not an engine. */
function skipReason(c: OpaTestCase): string | undefined {
  if (c.modules.some((m) => /\btest\.sleep\(/.test(m))) return "uses test.sleep, a builtin only OPA's Go test harness registers";
  return undefined;
}

/** Does the outcome satisfy the case's expectation (want_result / want_defined / want_error)? */
export function meetsExpectation(o: Outcome, c: OpaTestCase): boolean {
  if (c.wantErrorCode !== undefined || c.wantError !== undefined) return o.kind === 'error';
  if (o.kind !== 'result') return false;
  if (c.wantResult !== undefined) return sameRows(o.rows, c.wantResult);
  if (c.wantDefined !== undefined) return c.wantDefined === o.rows.length > 0;
  return true;
}

export function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.kind === 'error' && b.kind === 'error') return true;
  if (a.kind !== 'result' || b.kind !== 'result') return false;
  return sameRows(a.rows, b.rows);
}

function sameRows(a: Record<string, unknown>[], b: Record<string, unknown>[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((row, i) => sameValue(row, b[i]));
}

/**
 * JSON equality as OPA compares results: numbers by value (a bigint read from YAML as the double the JSON
 * answer holds), object keys unordered. Arrays are ordered, but an array equal as a multiset also matches,
 * because a Rego set reaches JSON as an array whose order is the serialiser's.
 */
export function sameValue(x: unknown, y: unknown): boolean {
  if (typeof x === 'bigint' || typeof y === 'bigint' || typeof x === 'number' || typeof y === 'number') {
    return (typeof x === 'number' || typeof x === 'bigint') && (typeof y === 'number' || typeof y === 'bigint') && Number(x) === Number(y);
  }
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x) && Array.isArray(y)) {
    if (x.length !== y.length) return false;
    if (x.every((v, i) => sameValue(v, y[i]))) return true;
    const used = new Set<number>();
    return x.every((v) => {
      const j = y.findIndex((w, k) => !used.has(k) && sameValue(v, w));
      if (j < 0) return false;
      used.add(j);
      return true;
    });
  }
  const xo = x as Record<string, unknown>;
  const yo = y as Record<string, unknown>;
  const keys = Object.keys(xo);
  return keys.length === Object.keys(yo).length && keys.every((k) => k in yo && sameValue(xo[k], yo[k]));
}
