import { constants, createHmac, sign } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import { isObject, type Value } from './json-values.js';
import { keyFromJwk, parseJwkSet, TOKEN_ALGORITHMS } from './jwt-keys.js';
import { HASH } from './jwt-token.js';

/** io.jwt.encode_sign(_raw): the first key of a JWK (set) signs `base64url(header).base64url(payload)`. */
export function encodeSign(headerText: string, payloadText: string, jwkText: string): string {
  const jwks = parseJwkSet(jwkText);
  const jwk = jwks[0];
  if (!jwk) throw new BuiltinError('no keys found in JWK set');
  let header: Value;
  try {
    header = JSON.parse(headerText) as Value;
  } catch {
    header = null;
  }
  const alg = isObject(header) ? header.alg : undefined;
  if (typeof alg !== 'string') throw new BuiltinError("missing or invalid 'alg' header");
  if (!TOKEN_ALGORITHMS.has(alg)) throw new BuiltinError(`unknown JWS algorithm: ${alg}`);
  const typ = isObject(header) ? header.typ : undefined;
  if ((typeof typ !== 'string' || typ === 'JWT') && !isJson(payloadText)) throw new BuiltinError('type is JWT but payload is not JSON');
  const input = `${Buffer.from(headerText, 'utf8').toString('base64url')}.${Buffer.from(payloadText, 'utf8').toString('base64url')}`;
  const family = alg.slice(0, 2);
  const hash = HASH[alg.slice(2)];
  let signature: Buffer;
  try {
    if (family === 'HS') {
      const key = keyFromJwk(jwk, false);
      if (key.type !== 'secret') throw new Error(`${alg} needs a symmetric (oct) key`);
      signature = createHmac(hash as string, key).update(input).digest();
    } else {
      const key = keyFromJwk(jwk, true);
      if (alg === 'EdDSA') signature = sign(null, Buffer.from(input), key);
      else if (family === 'RS') signature = sign(hash as string, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PADDING });
      else if (family === 'PS') signature = sign(hash as string, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
      else signature = sign(hash as string, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    }
  } catch (err) {
    throw new BuiltinError(`failed to sign: ${(err as Error).message}`);
  }
  return `${input}.${signature.toString('base64url')}`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
