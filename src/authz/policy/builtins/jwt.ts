import { constants, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { BuiltinError, objectArg, stringArg, type BuiltinTable, type EvaluationContext } from './builtin.js';
import { base64UrlDecode } from './encoding.js';
import { goJsonMarshal } from './go-json.js';
import { decodeValue, isObject, type Value } from './json-values.js';
import { keyFromJwk, keysFromCertOrJwk, parseJwkSet, TOKEN_ALGORITHMS, type VerificationKey } from './jwt-keys.js';

/*
 * io.jwt.* as OPA's topdown/tokens.go implements them. Signatures are checked with node:crypto because a
 * WebAssembly host call is synchronous and `jose` offers only Promise-returning verify/sign functions.
 */

type JsonObject = { [key: string]: Value };

interface Token {
  header: string;
  payload: string;
  signature: string;
}

function splitToken(jwt: string): Token {
  if (!jwt.includes('.')) throw new BuiltinError('encoded JWT had no period separators');
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new BuiltinError(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0] as string, payload: parts[1] as string, signature: parts[2] as string };
}

function jsonObject(text: string): JsonObject {
  let v: Value;
  try {
    v = decodeValue(text);
  } catch (err) {
    throw new BuiltinError(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new BuiltinError('decoded JSON type was not an Object');
  return v;
}

function decodeHeader(token: Token): JsonObject {
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

function decodeSignature(token: Token): Buffer {
  return base64UrlDecode(token.signature);
}

interface ParsedHeader {
  alg: string;
  kid: string;
  cty: string;
  valid: boolean;
}

/** OPA's parseTokenHeader + valid(): typed fields, `alg` required, no unknown critical parameter. */
function parseHeader(header: JsonObject): ParsedHeader {
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
const headers = new Map<string, { header: JsonObject; parsed: ParsedHeader }>();

function decodedHeader(token: Token): { header: JsonObject; parsed: ParsedHeader } {
  let entry = headers.get(token.header);
  if (!entry) {
    const header = decodeHeader(token);
    entry = { header, parsed: parseHeader(header) };
    if (headers.size >= 64) headers.clear();
    headers.set(token.header, entry);
  }
  return entry;
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** jwsbb.Verify: true when `signature` is `alg` over `signingInput` with `key`; any failure is false. */
function verifySignature(key: KeyObject, alg: string, signingInput: Buffer, signature: Buffer): boolean {
  try {
    const family = alg.slice(0, 2);
    const hash = HASH[alg.slice(2)];
    if (alg === 'EdDSA') return key.type === 'public' && verify(null, signingInput, key, signature);
    if (!TOKEN_ALGORITHMS.has(alg) || hash === undefined) return false;
    if (family === 'HS') {
      if (key.type !== 'secret') return false;
      const mac = createHmac(hash, key).update(signingInput).digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    if (key.type !== 'public' && key.type !== 'private') return false;
    if (family === 'RS') return key.asymmetricKeyType === 'rsa' && verify(hash, signingInput, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    if (family === 'PS') {
      return key.asymmetricKeyType === 'rsa' && verify(hash, signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    }
    if (family === 'ES') return key.asymmetricKeyType === 'ec' && verify(hash, signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature);
    return false;
  } catch {
    return false;
  }
}

/** The key-selection rule OPA applies for certificates and JWKS: a matching kid first, then any key whose alg fits. */
function verifyWithKeys(keys: VerificationKey[], kid: string, alg: string, signingInput: Buffer, signature: Buffer): boolean {
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

function signingInput(token: Token): Buffer {
  return Buffer.from(`${token.header}.${token.payload}`, 'utf8');
}

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

interface Constraints {
  keys: VerificationKey[] | undefined;
  secret: string;
  alg: string;
  iss: string;
  aud: string;
  timeNs: number;
}

function parseConstraints(obj: JsonObject, ctx: EvaluationContext): Constraints {
  const c: Constraints = { keys: undefined, secret: '', alg: '', iss: '', aud: '', timeNs: -1 };
  for (const [name, v] of Object.entries(obj)) {
    switch (name) {
      case 'cert':
        if (typeof v !== 'string') throw new BuiltinError('cert constraint: must be a string');
        c.keys = keysFromCertOrJwk(v);
        break;
      case 'secret':
      case 'alg':
      case 'iss':
      case 'aud':
        if (typeof v !== 'string') throw new BuiltinError(`${name} constraint: must be a string`);
        c[name] = v;
        break;
      case 'time':
        c.timeNs = timeConstraint(v);
        break;
      default:
        throw new BuiltinError(`unknown token validation constraint: ${name}`);
    }
  }
  if (c.timeNs === -1) c.timeNs = Number(ctx.nowNs());
  const keyConstraints = (c.keys !== undefined ? 1 : 0) + (c.secret !== '' ? 1 : 0);
  if (keyConstraints > 1) throw new BuiltinError('duplicate key constraints');
  if (keyConstraints < 1) throw new BuiltinError('no key constraint');
  return c;
}

function timeConstraint(v: Value): number {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new BuiltinError('token time constraint: must be a number');
  const n = Number(v);
  if (n < 0) throw new BuiltinError('token time constraint: must not be negative');
  return n;
}

function validAudience(aud: Value, want: string): boolean {
  if (typeof aud === 'string') return aud === want;
  return Array.isArray(aud) && aud.some((x) => typeof x === 'string' && x === want);
}

const UNVERIFIED: Value = [false, {}, {}];

/** A token checked under a key set: its signature(s) failed, or the algs of each nesting level and what it holds. */
type Verified = { ok: false } | { ok: true; algs: string[]; header: JsonObject; payload: JsonObject };

function decodeVerify(args: Value[], ctx: EvaluationContext): Value {
  const outer = stringArg(args, 0);
  const constraints = parseConstraints(objectArg(args, 1), ctx);
  const verified = verifiedTokens(constraints.keys ?? constraints.secret);
  let entry = verified.get(outer);
  if (entry === undefined) {
    entry = verifyToken(outer, constraints);
    if (entry === undefined) return UNVERIFIED;
    remember(verified, outer, entry);
  }
  if (!entry.ok) return UNVERIFIED;
  if (constraints.alg !== '' && entry.algs.some((alg) => alg !== constraints.alg)) return UNVERIFIED;
  const { header, payload } = entry;
  return checkClaims(header, payload, constraints);
}

/**
 * RFC 7519 7.2 as OPA's decode_verify: split, decode and check the header, verify the signature, decode the
 * payload, and go round again for a nested token. Undefined when the answer is "unverified" for reasons that
 * depend on the call's constraints (a header alg other than the constraint's), so nothing is remembered.
 */
function verifyToken(outer: string, constraints: Constraints): Verified | undefined {
  let jwt = outer;
  const algs: string[] = [];
  let header: JsonObject;
  let payloadText: string;
  for (;;) {
    const token = splitToken(jwt);
    let parsed: ParsedHeader;
    ({ header, parsed } = decodedHeader(token));
    if (!parsed.valid) return { ok: false };
    if (constraints.alg !== '' && constraints.alg !== parsed.alg) return undefined;
    algs.push(parsed.alg);
    const signature = decodeSignature(token);
    const input = signingInput(token);
    const ok = constraints.keys !== undefined
      ? verifyWithKeys(constraints.keys, parsed.kid, parsed.alg, input, signature)
      : verifySignature(secretKey(constraints.secret), parsed.alg, input, signature);
    if (!ok) return { ok: false };
    try {
      payloadText = base64UrlDecode(token.payload).toString('utf8');
    } catch (err) {
      throw new BuiltinError(`JWT payload had invalid encoding: ${(err as Error).message}`);
    }
    if (parsed.cty.toLowerCase() !== 'jwt') break;
    jwt = payloadText; // nested JWT: verify the inner token with the same constraints
  }
  return { ok: true, algs, header, payload: jsonObject(payloadText) };
}

/** The registered claims against the constraints and the evaluation's clock (never remembered). */
function checkClaims(header: JsonObject, payload: JsonObject, constraints: Constraints): Value {
  if (constraints.iss !== '' && payload.iss !== constraints.iss) return UNVERIFIED;
  if ('aud' in payload) {
    if (!validAudience(payload.aud as Value, constraints.aud)) return UNVERIFIED;
  } else if (constraints.aud !== '') return UNVERIFIED;
  const nowSeconds = constraints.timeNs / 1e9;
  if ('exp' in payload) {
    const exp = payload.exp;
    if (typeof exp !== 'number' && typeof exp !== 'bigint') throw new BuiltinError('exp value must be a number');
    if (nowSeconds >= Number(exp)) return UNVERIFIED;
  }
  if ('nbf' in payload) {
    const nbf = payload.nbf;
    if (typeof nbf !== 'number' && typeof nbf !== 'bigint') throw new BuiltinError('nbf value must be a number');
    if (nowSeconds < Number(nbf)) return UNVERIFIED;
  }
  return [true, header, payload];
}

/*
 * Verified tokens (with their decoded header and payload) and failed signatures, by token, per key set (a
 * parsed certificate/JWKS, or a secret), as OPA's io_jwt cache keys them by token and keys: a token's
 * signature under given keys never changes, and agents send the same token on many requests. Claims (iss, aud, exp, nbf) are still checked on every call. Bounded: at most
 * 16 key sets (the oldest dropped first) of 1024 tokens each (a full set is emptied).
 */
const verifiedByKeys = new Map<VerificationKey[] | string, Map<string, Verified>>();
const TOKENS_PER_KEY_SET = 1024;
const KEY_SETS = 16;

function verifiedTokens(keys: VerificationKey[] | string): Map<string, Verified> {
  let m = verifiedByKeys.get(keys);
  if (!m) {
    if (verifiedByKeys.size >= KEY_SETS) verifiedByKeys.delete(verifiedByKeys.keys().next().value as VerificationKey[] | string);
    m = new Map();
    verifiedByKeys.set(keys, m);
  }
  return m;
}

function remember(m: Map<string, Verified>, token: string, entry: Verified): void {
  // Emptied when full: evicting one entry at a time from a Map walks the holes earlier deletions left
  if (m.size >= TOKENS_PER_KEY_SET) m.clear();
  m.set(token, entry);
}

const secrets = new Map<string, KeyObject>();

/** HMAC secrets as key objects, memoised like parsed certificates (a policy uses one or two). */
function secretKey(secret: string): KeyObject {
  let key = secrets.get(secret);
  if (!key) {
    if (secrets.size >= 64) secrets.clear();
    key = createSecretKeyFrom(secret);
    secrets.set(secret, key);
  }
  return key;
}

function createSecretKeyFrom(secret: string): KeyObject {
  return keyFromJwk({ kty: 'oct', k: Buffer.from(secret, 'utf8').toString('base64url') }, false);
}

/** io.jwt.encode_sign(_raw): the first key of a JWK (set) signs `base64url(header).base64url(payload)`. */
function encodeSign(headerText: string, payloadText: string, jwkText: string): string {
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
