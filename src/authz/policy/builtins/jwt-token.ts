import { createHmac, timingSafeEqual, verify, constants, type KeyObject } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import { base64UrlDecode } from './encoding.js';
import { decodeValue, encodeValue, isObject, type Value } from './json-values.js';
import { TOKEN_ALGORITHMS, type VerificationKey } from './jwt-keys.js';

/*
 * A compact JWS as OPA's topdown/tokens.go reads it: three base64url parts, a JSON header (JWE refused),
 * signatures checked with node:crypto (a WebAssembly host call is synchronous, and jose's verify, sign and
 * key import return Promises).
 */

export type JsonObject = { [key: string]: Value };

export interface Token {
  header: string;
  payload: string;
  signature: string;
}

export function splitToken(jwt: string): Token {
  if (!jwt.includes('.')) throw new BuiltinError('encoded JWT had no period separators');
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new BuiltinError(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0] as string, payload: parts[1] as string, signature: parts[2] as string };
}

export function jsonObject(text: string): JsonObject {
  let v: Value;
  try {
    v = decodeValue(text);
  } catch (err) {
    throw new BuiltinError(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new BuiltinError('decoded JSON type was not an Object');
  return v;
}

export function decodeHeader(token: Token): JsonObject {
  let text: string;
  try {
    text = base64UrlDecode(token.header).toString('utf8');
  } catch (err) {
    throw new BuiltinError(`JWT header had invalid encoding: ${(err as Error).message}`);
  }
  let header: JsonObject;
  try {
    header = jsonObject(text);
  } catch (err) {
    throw new BuiltinError(`bad JWT header: ${(err as Error).message}`);
  }
  if ('enc' in header) throw new BuiltinError('JWT is a JWE object, which is not supported');
  return header;
}

export function decodeSignature(token: Token): Buffer {
  return base64UrlDecode(token.signature);
}

export interface ParsedHeader {
  alg: string;
  kid: string;
  cty: string;
  valid: boolean;
}

/** OPA's parseTokenHeader + valid(): typed fields, `alg` required, no unknown critical parameter. */
export function parseHeader(header: JsonObject): ParsedHeader {
  const out = { alg: '', kid: '', typ: '', cty: '' };
  let crit: Set<string> | undefined;
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(header)) {
    if (k === 'alg' || k === 'kid' || k === 'typ' || k === 'cty') {
      if (typeof v !== 'string') throw new BuiltinError(`${k}: must be a string`);
      out[k] = v;
    } else if (k === 'crit') {
      if (!Array.isArray(v)) throw new BuiltinError('crit: must be a list');
      crit = new Set(v.filter((x): x is string => typeof x === 'string'));
      if (crit.size === 0) throw new BuiltinError('crit: must be a nonempty list');
    } else unknown.push(k);
  }
  const valid = out.alg !== '' && !unknown.some((u) => crit?.has(u));
  return { alg: out.alg, kid: out.kid, cty: out.cty, valid };
}

/**
 * Decoded JOSE headers by their encoded segment: the tokens of one issuer share a header, so a token not seen
 * before still skips decoding it. Bounded (emptied when full); only well-formed headers are kept.
 */
const headers = new Map<string, { header: JsonObject; parsed: ParsedHeader; encoded: string }>();

/** The decoded header, its parsed fields, and its text as encodeValue writes it (for decode_verify's result). */
export function decodedHeader(token: Token): { header: JsonObject; parsed: ParsedHeader; encoded: string } {
  let entry = headers.get(token.header);
  if (!entry) {
    const header = decodeHeader(token);
    entry = { header, parsed: parseHeader(header), encoded: encodeValue(header) };
    if (headers.size >= 64) headers.clear();
    headers.set(token.header, entry);
  }
  return entry;
}

export const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** jwsbb.Verify: true when `signature` is `alg` over `signingInput` with `key`; any failure is false. */
export function verifySignature(key: KeyObject, alg: string, signingInput: string, signature: Buffer): boolean {
  try {
    const family = alg.slice(0, 2);
    const hash = HASH[alg.slice(2)];
    if (alg === 'EdDSA') return key.type === 'public' && verify(null, Buffer.from(signingInput), key, signature);
    if (!TOKEN_ALGORITHMS.has(alg) || hash === undefined) return false;
    if (family === 'HS') {
      if (key.type !== 'secret') return false;
      const mac = createHmac(hash, key).update(signingInput).digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    if (key.type !== 'public' && key.type !== 'private') return false;
    const data = Buffer.from(signingInput);
    if (family === 'RS') return key.asymmetricKeyType === 'rsa' && verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    if (family === 'PS') {
      return key.asymmetricKeyType === 'rsa' && verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    }
    if (family === 'ES') return key.asymmetricKeyType === 'ec' && verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    return false;
  } catch {
    return false;
  }
}

/** The key-selection rule OPA applies for certificates and JWKS: a matching kid first, then any key whose alg fits. */
export function verifyWithKeys(keys: VerificationKey[], kid: string, alg: string, signingInput: string, signature: Buffer): boolean {
  if (kid !== '') {
    const byKid = keys.find((k) => k.kid === kid);
    if (byKid) return verifySignature(byKid.key, alg, signingInput, signature);
  }
  for (const k of keys) {
    if (k.alg !== '' && k.alg !== alg) continue;
    if (verifySignature(k.key, alg, signingInput, signature)) return true;
  }
  return false;
}

/** The signed text; hashed as UTF-8 by node:crypto (no intermediate Buffer). */
export function signingInput(token: Token): string {
  return `${token.header}.${token.payload}`;
}
