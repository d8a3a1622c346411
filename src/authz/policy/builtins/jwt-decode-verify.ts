import type { KeyObject } from 'node:crypto';
import { BuiltinError, objectArg, stringArg, type EvaluationContext } from './builtin.js';
import { base64UrlDecode } from './encoding.js';
import { EncodedValue, encodeValue, type Value } from './json-values.js';
import { keyFromJwk, keysFromCertOrJwk, type VerificationKey } from './jwt-keys.js';
import { decodedHeader, decodeSignature, jsonObject, signingInput, splitToken, verifySignature, verifyWithKeys, type JsonObject, type ParsedHeader } from './jwt-token.js';

/** io.jwt.decode_verify as OPA's builtinJWTDecodeVerify: constraints, nested tokens, registered claims. */

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

const UNVERIFIED = new EncodedValue('[false,{},{}]');

/**
 * A token checked under a key set: its signature(s) failed, or the algs of each nesting level and what it
 * holds, with the result [true, header, payload] encoded for the policy once (a remembered token is
 * answered without writing it again).
 */
type Verified = { ok: false } | { ok: true; algs: string[]; header: JsonObject; headerText: string; payload: JsonObject; encoded?: EncodedValue };

export function decodeVerify(args: Value[], ctx: EvaluationContext): Value | EncodedValue {
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
  if (!claimsHold(entry.payload, constraints)) return UNVERIFIED;
  entry.encoded ??= new EncodedValue(`[true,${entry.headerText},${encodeValue(entry.payload)}]`);
  return entry.encoded;
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
  let headerText: string;
  let payloadText: string;
  for (;;) {
    const token = splitToken(jwt);
    let parsed: ParsedHeader;
    ({ header, parsed, encoded: headerText } = decodedHeader(token));
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
  return { ok: true, algs, header, headerText, payload: jsonObject(payloadText) };
}

/** The registered claims against the constraints and the evaluation's clock (never remembered). */
function claimsHold(payload: JsonObject, constraints: Constraints): boolean {
  if (constraints.iss !== '' && payload.iss !== constraints.iss) return false;
  if ('aud' in payload) {
    if (!validAudience(payload.aud as Value, constraints.aud)) return false;
  } else if (constraints.aud !== '') return false;
  const nowSeconds = constraints.timeNs / 1e9;
  if ('exp' in payload) {
    const exp = payload.exp;
    if (typeof exp !== 'number' && typeof exp !== 'bigint') throw new BuiltinError('exp value must be a number');
    if (nowSeconds >= Number(exp)) return false;
  }
  if ('nbf' in payload) {
    const nbf = payload.nbf;
    if (typeof nbf !== 'number' && typeof nbf !== 'bigint') throw new BuiltinError('nbf value must be a number');
    if (nowSeconds < Number(nbf)) return false;
  }
  return true;
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
export function secretKey(secret: string): KeyObject {
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
