import { createHmac, timingSafeEqual } from 'node:crypto';
import { BuiltinError, objectArg, stringArg, type BuiltinTable } from './builtin.js';
import { base64UrlDecode } from './encoding.js';
import { goJsonMarshal } from './go-json.js';
import type { Value } from './json-values.js';
import { decodeVerify } from './jwt-decode-verify.js';
import { encodeSign } from './jwt-encode-sign.js';
import { keysFromCertOrJwk } from './jwt-keys.js';
import { decodeHeader, decodeSignature, jsonObject, parseHeader, signingInput, splitToken, verifySignature } from './jwt-token.js';

/** io.jwt.* as OPA's topdown/tokens.go implements them (token reading in jwt-token.ts). */

function decode(jwt: string): Value {
  const token = splitToken(jwt);
  const header = decodeHeader(token);
  let payloadText: string;
  try {
    payloadText = base64UrlDecode(token.payload).toString('utf8');
  } catch (err) {
    throw new BuiltinError(`JWT payload had invalid encoding: ${(err as Error).message}`);
  }
  if (header.cty === 'JWT') return decode(payloadText.replace(/^["']+|["']+$/g, ''));
  const payload = jsonObject(payloadText);
  let signature: Buffer;
  try {
    signature = decodeSignature(token);
  } catch (err) {
    throw new BuiltinError(`JWT signature had invalid encoding: ${(err as Error).message}`);
  }
  return [header, payload, signature.toString('hex')];
}

/** io.jwt.verify_<alg> with a certificate, PEM public key or JWK(S). The builtin's own alg is what counts. */
function verifyAsymmetric(alg: string) {
  return (args: Value[]): Value => {
    const token = splitToken(stringArg(args, 0));
    const keys = keysFromCertOrJwk(stringArg(args, 1));
    const signature = decodeSignature(token);
    const header = parseHeader(decodeHeader(token));
    const input = signingInput(token);
    if (header.kid !== '') {
      const byKid = keys.find((k) => k.kid === header.kid);
      if (byKid) return verifySignature(byKid.key, alg, input, signature);
    }
    for (const k of keys) {
      if (k.alg !== '' && k.alg !== header.alg) continue;
      if (verifySignature(k.key, alg, input, signature)) return true;
    }
    return false;
  };
}

function verifyHmac(hash: string) {
  return (args: Value[]): Value => {
    const jwt = stringArg(args, 0);
    const secret = stringArg(args, 1);
    const token = splitToken(jwt);
    const mac = createHmac(hash, Buffer.from(secret, 'utf8')).update(signingInput(token)).digest();
    const signature = decodeSignature(token);
    return mac.length === signature.length && timingSafeEqual(mac, signature);
  };
}

export const jwtBuiltins: BuiltinTable = {
  'io.jwt.decode': (a) => decode(stringArg(a, 0)),
  'io.jwt.decode_verify': decodeVerify,
  'io.jwt.verify_hs256': verifyHmac('sha256'),
  'io.jwt.verify_hs384': verifyHmac('sha384'),
  'io.jwt.verify_hs512': verifyHmac('sha512'),
  'io.jwt.verify_rs256': verifyAsymmetric('RS256'),
  'io.jwt.verify_rs384': verifyAsymmetric('RS384'),
  'io.jwt.verify_rs512': verifyAsymmetric('RS512'),
  'io.jwt.verify_ps256': verifyAsymmetric('PS256'),
  'io.jwt.verify_ps384': verifyAsymmetric('PS384'),
  'io.jwt.verify_ps512': verifyAsymmetric('PS512'),
  'io.jwt.verify_es256': verifyAsymmetric('ES256'),
  'io.jwt.verify_es384': verifyAsymmetric('ES384'),
  'io.jwt.verify_es512': verifyAsymmetric('ES512'),
  'io.jwt.verify_eddsa': verifyAsymmetric('EdDSA'),
  'io.jwt.encode_sign': (a) => encodeSign(goJsonMarshal(objectArg(a, 0)), goJsonMarshal(objectArg(a, 1)), goJsonMarshal(objectArg(a, 2))),
  'io.jwt.encode_sign_raw': (a) => encodeSign(stringArg(a, 0), stringArg(a, 1), stringArg(a, 2)),
};
