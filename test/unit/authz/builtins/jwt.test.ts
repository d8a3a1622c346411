import { generateKeyPairSync, createHmac, sign, constants } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { EvaluationContext } from '../../../../src/authz/policy/builtins/builtin.js';
import { jwtBuiltins } from '../../../../src/authz/policy/builtins/jwt.js';
import { resultValue, type Value } from '../../../../src/authz/policy/builtins/json-values.js';

const NOW_S = 1_700_000_000;
const ctx: EvaluationContext = { nowNs: () => BigInt(NOW_S) * 1_000_000_000n, memo: new Map() };
const call = (name: string, ...args: Value[]): Value | undefined => resultValue((jwtBuiltins[name] as NonNullable<(typeof jwtBuiltins)[string]>)(args, ctx));
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

function token(header: Record<string, unknown>, payload: Record<string, unknown>, signer: (input: Buffer) => Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const claims = { sub: 'alice', iss: 'issuer', aud: 'toolgate', nbf: NOW_S - 10, exp: NOW_S + 60 };

describe('io.jwt.* host builtins', () => {
  it('decode_verify: HS256 with a secret; wrong secret, expired, not yet valid, wrong iss/aud are [false, {}, {}]', () => {
    const hs = (p: Record<string, unknown>, secret = 'secret'): string => token({ alg: 'HS256', typ: 'JWT' }, p, (i) => createHmac('sha256', secret).update(i).digest());
    expect(call('io.jwt.decode_verify', hs(claims), { secret: 'secret', aud: 'toolgate' })).toEqual([true, { alg: 'HS256', typ: 'JWT' }, claims]);
    const unverified = [false, {}, {}];
    expect(call('io.jwt.decode_verify', hs(claims, 'other'), { secret: 'secret', aud: 'toolgate' })).toEqual(unverified);
    expect(call('io.jwt.decode_verify', hs({ ...claims, exp: NOW_S }), { secret: 'secret', aud: 'toolgate' })).toEqual(unverified);
    expect(call('io.jwt.decode_verify', hs({ ...claims, nbf: NOW_S + 1 }), { secret: 'secret', aud: 'toolgate' })).toEqual(unverified);
    expect(call('io.jwt.decode_verify', hs(claims), { secret: 'secret', aud: 'toolgate', iss: 'someone-else' })).toEqual(unverified);
    // A token with an audience verifies only when the constraints name it (OPA's rule).
    expect(call('io.jwt.decode_verify', hs(claims), { secret: 'secret' })).toEqual(unverified);
    // The time constraint replaces the clock.
    expect(call('io.jwt.decode_verify', hs(claims), { secret: 'secret', aud: 'toolgate', time: (NOW_S + 3600) * 1e9 })).toEqual(unverified);
  });

  it('decode_verify: RS256 / PS256 / ES256 / EdDSA with PEM keys, a certificate-less JWKS matched by kid, alg constraint', () => {
    const rs = token({ alg: 'RS256' }, claims, (i) => sign('sha256', i, rsa.privateKey));
    const ps = token({ alg: 'PS256' }, claims, (i) => sign('sha256', i, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }));
    const es = token({ alg: 'ES256', kid: 'ec-1' }, claims, (i) => sign('sha256', i, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }));
    const eddsa = token({ alg: 'EdDSA' }, claims, (i) => sign(null, i, ed.privateKey));
    const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const c = { aud: 'toolgate' };
    expect((call('io.jwt.decode_verify', rs, { cert: rsaPem, ...c }) as Value[])[0]).toBe(true);
    expect((call('io.jwt.decode_verify', ps, { cert: rsaPem, ...c }) as Value[])[0]).toBe(true);
    expect((call('io.jwt.decode_verify', eddsa, { cert: ed.publicKey.export({ type: 'spki', format: 'pem' }) as string, ...c }) as Value[])[0]).toBe(true);
    const jwks = JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256' }, { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256' }] });
    expect((call('io.jwt.decode_verify', es, { cert: jwks, ...c }) as Value[])[0]).toBe(true);
    expect((call('io.jwt.decode_verify', rs, { cert: jwks, ...c }) as Value[])[0]).toBe(true);
    expect((call('io.jwt.decode_verify', rs, { cert: jwks, alg: 'ES256', ...c }) as Value[])[0]).toBe(false);
    expect(call('io.jwt.verify_rs256', rs, rsaPem)).toBe(true);
    expect(call('io.jwt.verify_es256', es, jwks)).toBe(true);
    expect(call('io.jwt.verify_ps256', rs, rsaPem)).toBe(false);
  });

  it('errors as OPA: a malformed token, no key constraint, an unknown constraint, a JWE', () => {
    expect(() => call('io.jwt.decode_verify', 'abc', { secret: 's' })).toThrow('encoded JWT had no period separators');
    expect(() => call('io.jwt.decode_verify', 'a.b', { secret: 's' })).toThrow('encoded JWT must have 3 sections, found 2');
    expect(() => call('io.jwt.decode_verify', 'a.b.c', {})).toThrow('no key constraint');
    expect(() => call('io.jwt.decode_verify', 'a.b.c', { secret: 's', colour: 'blue' })).toThrow('unknown token validation constraint: colour');
    expect(() => call('io.jwt.decode', `${b64({ alg: 'RSA-OAEP', enc: 'A128GCM' })}.${b64({})}.`)).toThrow('JWT is a JWE object, which is not supported');
  });

  it('encode_sign signs what decode_verify accepts; HS256 output is byte-identical to Go (sorted keys, HTML escaped)', () => {
    const jwk = { kty: 'oct', k: Buffer.from('secret').toString('base64url') };
    const signed = call('io.jwt.encode_sign', { typ: 'JWT', alg: 'HS256' }, { b: '<&>', a: 1 }, jwk) as string;
    const [h, p] = signed.split('.');
    expect(Buffer.from(h as string, 'base64url').toString()).toBe('{"alg":"HS256","typ":"JWT"}');
    expect(Buffer.from(p as string, 'base64url').toString()).toBe('{"a":1,"b":"\\u003c\\u0026\\u003e"}');
    expect((call('io.jwt.decode_verify', signed, { secret: 'secret' }) as Value[])[0]).toBe(true);
    const es = call('io.jwt.encode_sign', { alg: 'ES256' }, { sub: 'x' }, ec.privateKey.export({ format: 'jwk' }) as unknown as Value) as string;
    expect(call('io.jwt.verify_es256', es, ec.publicKey.export({ type: 'spki', format: 'pem' }) as string)).toBe(true);
  });
});
