import { createPrivateKey, createPublicKey, createSecretKey, X509Certificate, type KeyObject } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import { isObject, type Value } from './json-values.js';

/** A key to verify with, as OPA's getKeysFromCertOrJWK returns it: a JWKS key may name its alg and kid. */
export interface VerificationKey {
  alg: string;
  kid: string;
  key: KeyObject;
}

export const TOKEN_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA']);

const PEM_BLOCK = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n?-----END \1-----\r?\n?/;

/**
 * Parsed keys by their source text: a policy verifies every token with the same certificate or JWKS, and
 * parsing a PEM or JWK costs far more than the signature check. Bounded; the oldest entry goes first.
 */
const cache = new Map<string, VerificationKey[] | BuiltinError>();
const CACHE_LIMIT = 256;

export function keysFromCertOrJwk(text: string): VerificationKey[] {
  let hit = cache.get(text);
  if (hit === undefined) {
    try {
      hit = parseKeys(text);
    } catch (err) {
      hit = err instanceof BuiltinError ? err : new BuiltinError(String(err));
    }
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(text, hit);
  }
  if (hit instanceof BuiltinError) throw hit;
  return hit;
}

function parseKeys(text: string): VerificationKey[] {
  const pem = PEM_BLOCK.exec(text);
  if (pem) {
    if (text.length > pem[0].length + pem.index) throw new BuiltinError('extra data after a PEM certificate block');
    const type = pem[1];
    if (type === 'CERTIFICATE') {
      try {
        return [{ alg: '', kid: '', key: new X509Certificate(pem[0]).publicKey }];
      } catch (err) {
        throw new BuiltinError(`failed to parse a PEM certificate: ${(err as Error).message}`);
      }
    }
    if (type === 'PUBLIC KEY') {
      try {
        return [{ alg: '', kid: '', key: createPublicKey(pem[0]) }];
      } catch (err) {
        throw new BuiltinError(`failed to parse a PEM public key: ${(err as Error).message}`);
      }
    }
    throw new BuiltinError('failed to extract a Key from the PEM certificate');
  }
  const jwks = parseJwkSet(text);
  const keys: VerificationKey[] = [];
  for (const jwk of jwks) {
    const alg = typeof jwk.alg === 'string' ? jwk.alg : '';
    if (alg !== '' && !TOKEN_ALGORITHMS.has(alg)) continue;
    keys.push({ alg, kid: typeof jwk.kid === 'string' ? jwk.kid : '', key: keyFromJwk(jwk, false) });
  }
  return keys;
}

/** A JWK or a JWK set ({"keys": [...]}), as lestrrat-go/jwx's jwk.Parse accepts it. */
export function parseJwkSet(text: string): { [key: string]: Value }[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BuiltinError(`failed to parse a JWK key (set): ${(err as Error).message}`);
  }
  if (!isObject(doc as Value)) throw new BuiltinError('failed to parse a JWK key (set): not a JSON object');
  const obj = doc as { [key: string]: Value };
  if ('keys' in obj) {
    if (!Array.isArray(obj.keys) || !obj.keys.every((k) => isObject(k))) throw new BuiltinError('failed to parse a JWK key (set): "keys" must be an array of objects');
    return obj.keys as { [key: string]: Value }[];
  }
  return [obj];
}

/** A JWK as a Node key: `oct` as a secret, RSA/EC/OKP public (or private, when `d` is present and wanted). */
export function keyFromJwk(jwk: { [key: string]: Value }, wantPrivate: boolean): KeyObject {
  try {
    if (jwk.kty === 'oct') {
      if (typeof jwk.k !== 'string') throw new Error('oct key without "k"');
      return createSecretKey(Buffer.from(jwk.k, 'base64url'));
    }
    const asJwk = jwk as unknown as import('node:crypto').JsonWebKey;
    if (wantPrivate) return createPrivateKey({ key: asJwk, format: 'jwk' });
    return createPublicKey({ key: asJwk, format: 'jwk' });
  } catch (err) {
    throw new BuiltinError(`failed to parse a JWK key (set): ${(err as Error).message}`);
  }
}
