import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { parse as parseYaml } from 'yaml';

/**
 * An OPA bundle (https://www.openpolicyagent.org/docs/management-bundles) as toolgate uses it: the manifest,
 * the data tree, the Rego sources and the WebAssembly modules with their entrypoints.
 */
export interface WasmModule {
  path: string;
  entrypoints: string[];
  bytes: Uint8Array;
}

export interface PolicyBundle {
  revision: string;
  roots: string[];
  wasm: WasmModule[];
  data: Record<string, unknown>;
  rego: { path: string; source: string }[];
  metadata: Record<string, unknown>;
  /** sha256 of the archive (or of the directory's files): identifies exactly what was loaded. */
  digest: string;
  /** Every file as read (path relative to the bundle root), for signature verification. */
  files: ReadonlyMap<string, Buffer>;
}

export class BundleError extends Error {}

const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_TOTAL_BYTES = 256 * 1024 * 1024;

type Files = Map<string, Buffer>;

export async function parseBundleArchive(bytes: Uint8Array): Promise<PolicyBundle> {
  let tarBytes: Buffer;
  try {
    tarBytes = gunzipSync(bytes, { maxOutputLength: MAX_TOTAL_BYTES + 1024 * 1024 });
  } catch (err) {
    throw new BundleError(`bundle is not a gzip archive: ${(err as Error).message}`);
  }
  const files: Files = new Map();
  let total = 0;
  const extract = tarExtract();
  const done = (async () => {
    for await (const entry of extract) {
      const { name, type, size } = entry.header;
      if (type !== 'file') {
        entry.resume();
        continue;
      }
      const path = normalisePath(name);
      if ((size ?? 0) > MAX_FILE_BYTES) throw new BundleError(`bundle file ${path} is larger than 64 MiB`);
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const content = Buffer.concat(chunks);
      total += content.length;
      if (total > MAX_TOTAL_BYTES) throw new BundleError('bundle is larger than 256 MiB uncompressed');
      files.set(path, content);
    }
  })();
  Readable.from([tarBytes]).pipe(extract);
  try {
    await done;
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(`bundle is not a valid tar archive: ${(err as Error).message}`);
  }
  if (files.size === 0) throw new BundleError('bundle archive is empty or not a tar archive');
  return assemble(files, sha256(bytes));
}

export async function readBundleDirectory(dir: string): Promise<PolicyBundle> {
  const files: Files = new Map();
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const rel = relative(dir, p).split(sep).join('/');
        const content = await readFile(p);
        if (content.length > MAX_FILE_BYTES) throw new BundleError(`bundle file ${rel} is larger than 64 MiB`);
        files.set(rel, content);
        hash.update(rel).update('\0').update(content);
      }
    }
  };
  await walk(dir);
  return assemble(files, hash.digest('hex'));
}

export async function loadBundleFile(path: string): Promise<PolicyBundle> {
  const s = await stat(path).catch((err: unknown) => {
    throw new BundleError(`cannot read bundle ${path}: ${(err as Error).message}`);
  });
  return s.isDirectory() ? readBundleDirectory(path) : parseBundleArchive(await readFile(path));
}

/** Archive member names are untrusted: refuse anything that could escape the bundle root. */
function normalisePath(name: string): string {
  // OPA writes members as "/data.json"; other tools as "./data.json" or "data.json": all mean the bundle root.
  const p = name.replace(/^\.?\/+/, '');
  if (p.split('/').includes('..')) throw new BundleError(`bundle path "${name}" escapes the bundle`);
  return p;
}

interface Manifest {
  revision?: unknown;
  roots?: unknown;
  wasm?: unknown;
  metadata?: unknown;
}

function assemble(files: Files, digest: string): PolicyBundle {
  let manifest: Manifest = {};
  const rawManifest = files.get('.manifest');
  if (rawManifest) {
    try {
      manifest = JSON.parse(rawManifest.toString('utf8')) as Manifest;
    } catch (err) {
      throw new BundleError(`bundle .manifest is not valid JSON: ${(err as Error).message}`);
    }
    if (manifest === null || typeof manifest !== 'object') throw new BundleError('bundle .manifest must be a JSON object');
  }
  const revision = typeof manifest.revision === 'string' ? manifest.revision : '';
  const roots = Array.isArray(manifest.roots) ? manifest.roots.map(String) : [''];
  const metadata = manifest.metadata && typeof manifest.metadata === 'object' ? (manifest.metadata as Record<string, unknown>) : {};

  const data: Record<string, unknown> = {};
  const rego: { path: string; source: string }[] = [];
  const wasmFiles = new Map<string, Buffer>();
  for (const [path, content] of files) {
    const base = path.slice(path.lastIndexOf('/') + 1);
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (base === 'data.json' || base === 'data.yaml' || base === 'data.yml') {
      mergeData(data, dir, parseDataFile(path, content), path);
    } else if (path.endsWith('.rego')) {
      rego.push({ path, source: content.toString('utf8') });
    } else if (path.endsWith('.wasm')) {
      wasmFiles.set(path, content);
    }
  }

  const wasm: WasmModule[] = [];
  const entries = Array.isArray(manifest.wasm) ? (manifest.wasm as { entrypoint?: unknown; module?: unknown }[]) : [];
  for (const e of entries) {
    const modulePath = normalisePath(String(e.module ?? ''));
    const bytes = wasmFiles.get(modulePath);
    if (!bytes) throw new BundleError(`bundle manifest names wasm module ${String(e.module)} which is not in the bundle`);
    let m = wasm.find((w) => w.path === modulePath);
    if (!m) {
      m = { path: modulePath, entrypoints: [], bytes };
      wasm.push(m);
    }
    if (typeof e.entrypoint === 'string') m.entrypoints.push(e.entrypoint);
  }
  for (const [path, bytes] of wasmFiles) if (!wasm.some((w) => w.path === path)) wasm.push({ path, entrypoints: [], bytes });
  return { revision, roots, wasm, data, rego, metadata, digest, files };
}

function parseDataFile(path: string, content: Buffer): unknown {
  const text = content.toString('utf8');
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new BundleError(`bundle data file ${path} is invalid: ${(err as Error).message}`);
  }
}

/** Places `value` at the data path of `dir`, merging objects and refusing two values for one path. */
function mergeData(root: Record<string, unknown>, dir: string, value: unknown, origin: string): void {
  const segments = dir === '' ? [] : dir.split('/');
  if (segments.length === 0) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BundleError(`bundle data file ${origin} at the root must hold an object`);
    mergeObjects(root, value as Record<string, unknown>, origin, '');
    return;
  }
  let cur = root;
  for (const s of segments.slice(0, -1)) {
    const next = cur[s];
    if (next === undefined) cur[s] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new BundleError(`bundle data conflict at ${dir} (from ${origin})`);
    cur = cur[s] as Record<string, unknown>;
  }
  const last = segments[segments.length - 1] as string;
  if (cur[last] === undefined) cur[last] = value;
  else if (isObject(cur[last]) && isObject(value)) mergeObjects(cur[last] as Record<string, unknown>, value as Record<string, unknown>, origin, dir);
  else throw new BundleError(`bundle data conflict at ${dir} (from ${origin})`);
}

function mergeObjects(target: Record<string, unknown>, source: Record<string, unknown>, origin: string, at: string): void {
  for (const [k, v] of Object.entries(source)) {
    if (target[k] === undefined) target[k] = v;
    else if (isObject(target[k]) && isObject(v)) mergeObjects(target[k] as Record<string, unknown>, v as Record<string, unknown>, origin, `${at}/${k}`);
    else throw new BundleError(`bundle data conflict at ${at}/${k} (from ${origin})`);
  }
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
