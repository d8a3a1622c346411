import { createHash, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { parse as parseYaml } from 'yaml';
import { BundleError, type PolicyBundle } from './bundle.js';
import { canonicalJsonOf } from './canonical-json.js';

/**
 * Bundle signatures as OPA writes and checks them (https://www.openpolicyagent.org/docs/management-bundles#signing):
 * `.signatures.json` holds exactly one JWT whose payload lists every file of the bundle with its hash; the
 * JWT is verified with a configured key (chosen by the configured key id, else the JWT's `kid`, else the
 * payload's `keyid`), its `scope` must equal the configured one, and every file must match its hash (JSON and
 * YAML data and the manifest hashed as canonical JSON, everything else as bytes), with no file missing or added.
 */
export const SIGNATURES_FILE = '.signatures.json';

export class BundleSignatureError extends BundleError {}

export interface VerificationKey {
  /** PEM public key or certificate (RS*, PS*, ES*), or the shared secret (HS*). */
  key: string;
  algorithm: string;
  scope?: string;
}

/** OPA's `bundles.<name>.signing` plus the `keys` it refers to. */
export interface VerificationConfig {
  keys: Record<string, VerificationKey>;
  keyId?: string;
  scope?: string;
  /** Glob patterns (OPA's exclude_files) of files the signature need not cover. */
  excludeFiles?: string[];
}

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

const HASHES: Record<string, string> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
};

const STRUCTURED = new Set(['data.json', 'data.yaml', '.manifest', 'signatures.json']);

/** Resolves when the bundle is signed by a configured key for the configured scope and untouched since. */
export async function verifyBundleSignature(bundle: PolicyBundle, config: VerificationConfig): Promise<{ keyId: string; files: number }> {
  const raw = bundle.files.get(SIGNATURES_FILE);
  if (!raw) throw new BundleSignatureError('bundle is not signed (no .signatures.json) but verification keys are configured');
  let signatures: unknown;
  try {
    signatures = (JSON.parse(raw.toString('utf8')) as { signatures?: unknown }).signatures;
  } catch (err) {
    throw new BundleSignatureError(`.signatures.json is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== 'string') {
    throw new BundleSignatureError('.signatures.json must hold exactly one JWT in "signatures"');
  }
  const { payload, keyId } = await verifyJwt(signatures[0], config);
  const signed = new Map<string, SignedFile>();
  for (const f of payload.files) signed.set(stripRoot(f.name), f);

  const exclude = (config.excludeFiles ?? []).map(globToRegExp);
  let checked = 0;
  for (const [path, content] of bundle.files) {
    if (path === SIGNATURES_FILE || exclude.some((re) => re.test(path))) continue;
    const entry = signed.get(path);
    if (!entry) throw new BundleSignatureError(`file ${path} is not covered by the bundle signature`);
    const digest = hashFile(path, content, entry.algorithm);
    if (digest !== entry.hash.toLowerCase()) throw new BundleSignatureError(`${path}: digest mismatch (the file was changed after signing)`);
    signed.delete(path);
    checked++;
  }
  if (signed.size > 0) throw new BundleSignatureError(`file(s) ${[...signed.keys()].join(', ')} are in the bundle signature but not in the bundle`);
  return { keyId, files: checked };
}

async function verifyJwt(token: string, config: VerificationConfig): Promise<{ payload: { files: SignedFile[]; scope?: string }; keyId: string }> {
  let header: { kid?: unknown };
  let claims: { keyid?: unknown; scope?: unknown; files?: unknown };
  try {
    header = decodeProtectedHeader(token);
    const part = token.split('.')[1] ?? '';
    claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as typeof claims;
  } catch (err) {
    throw new BundleSignatureError(`the bundle signature is not a JWT: ${(err as Error).message}`);
  }
  const keyId = config.keyId || (typeof header.kid === 'string' ? header.kid : '') || (typeof claims.keyid === 'string' ? claims.keyid : '');
  if (!keyId) throw new BundleSignatureError('the bundle signature names no key id and none is configured');
  const keyConfig = config.keys[keyId];
  if (!keyConfig) throw new BundleSignatureError(`the bundle is signed with key id "${keyId}", which is not a configured verification key`);
  try {
    await compactVerify(token, importKey(keyConfig), { algorithms: [keyConfig.algorithm] });
  } catch (err) {
    throw new BundleSignatureError(`the bundle signature does not verify with key "${keyId}" (${keyConfig.algorithm}): ${(err as Error).message}`);
  }
  const scope = config.scope || keyConfig.scope || '';
  const signedScope = typeof claims.scope === 'string' ? claims.scope : '';
  if (signedScope !== scope) throw new BundleSignatureError(`scope mismatch: the bundle is signed for scope "${signedScope}", this gateway accepts "${scope}"`);
  if (!Array.isArray(claims.files) || !claims.files.every(isSignedFile)) throw new BundleSignatureError('the bundle signature has no valid "files" list');
  return { payload: { files: claims.files as SignedFile[], scope: signedScope }, keyId };
}

function importKey(k: VerificationKey): KeyObject {
  try {
    return k.algorithm.startsWith('HS') ? createSecretKey(Buffer.from(k.key, 'utf8')) : createPublicKey(k.key);
  } catch (err) {
    throw new BundleSignatureError(`verification key for ${k.algorithm} cannot be read: ${(err as Error).message}`);
  }
}

/** OPA's file hash: canonical JSON (sorted keys, no whitespace, numbers as written) for structured files. */
export function hashFile(path: string, content: Buffer, algorithm: string): string {
  const name = HASHES[algorithm];
  if (!name) throw new BundleSignatureError(`${path}: unsupported hashing algorithm "${algorithm}"`);
  const base = path.slice(path.lastIndexOf('/') + 1);
  const h = createHash(name);
  if (STRUCTURED.has(base)) {
    let canonical: string;
    try {
      canonical = base === 'data.yaml' ? canonicalJsonOf(JSON.stringify(parseYaml(content.toString('utf8')))) : canonicalJsonOf(content.toString('utf8'));
    } catch (err) {
      throw new BundleSignatureError(`${path}: cannot be read to check its hash: ${(err as Error).message}`);
    }
    h.update(canonical, 'utf8');
  } else {
    h.update(content);
  }
  return h.digest('hex');
}

function isSignedFile(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const f = v as Record<string, unknown>;
  return typeof f.name === 'string' && typeof f.hash === 'string' && typeof f.algorithm === 'string';
}

function stripRoot(name: string): string {
  return name.replace(/^\.?\/+/, '');
}

/** filepath.Match-style globs: `*` and `?` within a path segment. */
function globToRegExp(glob: string): RegExp {
  const body = stripRoot(glob)
    .split('')
    .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}
