import { createPrivateKey, type KeyObject } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import type { Value } from './json-values.js';
import { base64Std, pemDecode } from './pem.js';
import { parseCertificate } from './x509-certificate.js';
import { EC_PUBLIC_KEY_OID, ecPrivateKeyValue, pkcs8Algorithm } from './x509-ec-key.js';
import { RSA_OID, rsaPrivateKeyValue } from './x509-rsa-key.js';
import { DerReader, TAG } from './der.js';

/**
 * Private keys as Go's encoding/json writes crypto/x509's parsed keys: *rsa.PrivateKey
 * {N, E, D, Primes, Precomputed {Dp, Dq, Qinv, CRTValues}}, *ecdsa.PrivateKey {Curve: {}, X, Y, D},
 * ed25519.PrivateKey (seed and public key, base64), *ecdh.PrivateKey ({}: no exported fields).
 */
type KeyFormat = 'pkcs1' | 'pkcs8' | 'sec1';

const big = (s: string | undefined): bigint => BigInt(`0x${Buffer.from(s ?? '', 'base64url').toString('hex') || '0'}`);

function importKey(der: Buffer, format: KeyFormat): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: format });
  } catch {
    throw new BuiltinError(
      format === 'pkcs1' ? 'x509: failed to parse private key (use ParsePKCS8PrivateKey instead for this key format)'
        : format === 'sec1' ? 'x509: failed to parse EC private key'
          : 'x509: failed to parse private key',
    );
  }
}

export function privateKeyValue(key: KeyObject, format: KeyFormat): Value {
  const type = key.asymmetricKeyType;
  if (format === 'pkcs1' && type !== 'rsa') throw new BuiltinError('x509: failed to parse private key');
  if (format === 'sec1' && type !== 'ec') throw new BuiltinError('x509: failed to parse EC private key');
  if (type === 'x25519') return {};
  const jwk = key.export({ format: 'jwk' });
  if (type === 'rsa') {
    return {
      N: big(jwk.n), E: big(jwk.e), D: big(jwk.d), Primes: [big(jwk.p), big(jwk.q)],
      Precomputed: { Dp: big(jwk.dp), Dq: big(jwk.dq), Qinv: big(jwk.qi), CRTValues: [] },
    };
  }
  if (type === 'ec') {
    if (!['P-224', 'P-256', 'P-384', 'P-521'].includes(jwk.crv as string)) throw new BuiltinError('x509: unknown elliptic curve');
    return { Curve: {}, X: big(jwk.x), Y: big(jwk.y), D: big(jwk.d) };
  }
  if (type === 'ed25519') return Buffer.concat([Buffer.from(jwk.d as string, 'base64url'), Buffer.from(jwk.x as string, 'base64url')]).toString('base64');
  throw new BuiltinError(`x509: PKCS#8 wrapping contained private key with unknown algorithm: ${type ?? 'unknown'}`);
}

const BLOCK_FORMATS: Record<string, KeyFormat> = { 'RSA PRIVATE KEY': 'pkcs1', 'PRIVATE KEY': 'pkcs8', 'EC PRIVATE KEY': 'sec1' };

export interface ParsedPrivateKey {
  type: string;
  value: Value;
}

/**
 * A DER private key in one format, as Go's ParsePKCS1PrivateKey, ParsePKCS8PrivateKey and ParseECPrivateKey
 * read it (their checks, their structures); node:crypto only derives an Ed25519 public key from its seed.
 */
export function parsePrivateKeyDer(der: Buffer, format: KeyFormat): ParsedPrivateKey {
  if (format === 'pkcs1') return { type: 'rsa', value: rsaPrivateKeyValue(der) };
  if (format === 'sec1') return { type: 'ec', value: ecPrivateKeyValue(der) };
  const wrapped = pkcs8Algorithm(der);
  if (!wrapped) throw new BuiltinError('x509: failed to parse private key');
  if (wrapped.oid === RSA_OID) return { type: 'rsa', value: rsaPrivateKeyValue(wrapped.key) };
  if (wrapped.oid === EC_PUBLIC_KEY_OID) return { type: 'ec', value: ecPrivateKeyValue(wrapped.key, wrapped.curve) };
  if (wrapped.oid === ED25519_OID || wrapped.oid === X25519_OID) {
    if (wrapped.hasParams) throw new BuiltinError('x509: invalid private key parameters');
    const seed = new DerReader(wrapped.key).read(TAG.OCTET_STRING);
    if (!seed || seed.content.length !== 32) throw new BuiltinError('x509: invalid private key length');
    if (wrapped.oid === X25519_OID) return { type: 'x25519', value: {} };
    const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed.content]), format: 'der', type: 'pkcs8' });
    return { type: 'ed25519', value: privateKeyValue(key, 'pkcs8') };
  }
  throw new BuiltinError('x509: PKCS#8 wrapping contained private key with unknown algorithm');
}

const ED25519_OID = '1.3.101.112';
const X25519_OID = '1.3.101.110';
/** PKCS #8 for an Ed25519 seed (RFC 8410): version 0, algorithm id-Ed25519, OCTET STRING { OCTET STRING seed }. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** OPA's getPrivateKeysFromPEMData: every private key block, after decoding the whole input from base64 when it is base64. */
export function privateKeysFromPem(input: string): ParsedPrivateKey[] {
  let bytes = base64Std(input) ?? Buffer.from(input, 'utf8');
  const keys: ParsedPrivateKey[] = [];
  while (bytes.length > 0) {
    const d = pemDecode(bytes);
    if (!d) break;
    bytes = d.rest;
    const format = BLOCK_FORMATS[d.block.type];
    if (format) keys.push(parsePrivateKeyDer(d.block.bytes, format));
  }
  return keys;
}

/** crypto.parse_private_keys */
export function parsePrivateKeys(input: string): Value {
  if (input === '') return null;
  return privateKeysFromPem(input).map((k) => k.value);
}

const BEGIN = '-----BEGIN ';

/** crypto.x509.parse_keypair: Go's tls.X509KeyPair as encoding/json writes tls.Certificate. */
export function parseKeyPair(certInput: string, keyInput: string): Value {
  const decode = (s: string): Buffer => {
    if (s.startsWith(BEGIN)) return Buffer.from(s, 'utf8');
    const b = base64Std(s);
    if (!b) throw new BuiltinError('illegal base64 data at input byte 0');
    return b;
  };
  let certPem = decode(certInput);
  let keyPem = decode(keyInput);
  const asPem = (type: string, der: Buffer): Buffer => Buffer.from(`-----BEGIN ${type}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${type}-----\n`);
  if (!certPem.subarray(0, BEGIN.length).equals(Buffer.from(BEGIN))) certPem = asPem('CERTIFICATE', certPem);
  if (!keyPem.subarray(0, 10).equals(Buffer.from('-----BEGIN'))) keyPem = asPem('PRIVATE KEY', keyPem);

  const ders: Buffer[] = [];
  const skipped: string[] = [];
  for (let rest = certPem; ; ) {
    const d = pemDecode(rest);
    if (!d) break;
    rest = d.rest;
    if (d.block.type === 'CERTIFICATE') ders.push(d.block.bytes);
    else skipped.push(d.block.type);
  }
  if (ders.length === 0) {
    throw new BuiltinError(
      skipped.length === 0 ? 'tls: failed to find any PEM data in certificate input'
        : `tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping PEM blocks of the following types: [${skipped.join(' ')}]`,
    );
  }
  let keyBlock;
  const skippedKeys: string[] = [];
  for (let rest = keyPem; ; ) {
    const d = pemDecode(rest);
    if (!d) {
      throw new BuiltinError(
        skippedKeys.length === 0 ? 'tls: failed to find any PEM data in key input'
          : skippedKeys.length === 1 && skippedKeys[0] === 'CERTIFICATE' ? 'tls: found a certificate rather than a key in the PEM for the private key'
            : `tls: failed to find PEM block with type ending in "PRIVATE KEY" in key input after skipping PEM blocks of the following types: [${skippedKeys.join(' ')}]`,
      );
    }
    rest = d.rest;
    if (d.block.type === 'PRIVATE KEY' || d.block.type.endsWith(' PRIVATE KEY')) {
      keyBlock = d.block;
      break;
    }
    skippedKeys.push(d.block.type);
  }
  const leaf = parseCertificate(ders[0] as Buffer);
  if (leaf.raw.length !== (ders[0] as Buffer).length) throw new BuiltinError('x509: trailing data');
  const parsed = (['pkcs1', 'pkcs8', 'sec1'] as const).map((format) => {
    try {
      return parsePrivateKeyDer(keyBlock.bytes, format);
    } catch {
      return undefined;
    }
  }).find((k) => k !== undefined);
  if (!parsed) throw new BuiltinError('tls: failed to parse private key');
  const pub = leaf.value.PublicKey;
  const priv = parsed.value as { [k: string]: Value } | string;
  const alg = leaf.publicKeyAlgorithm;
  const same = (a: Value | undefined, b: Value | undefined): boolean => a !== undefined && b !== undefined && String(a) === String(b);
  if (alg === 1 || alg === 3) {
    const wantType = alg === 1 ? 'rsa' : 'ec';
    if (parsed.type !== wantType || typeof priv !== 'object' || typeof pub !== 'object' || pub === null) throw new BuiltinError('tls: private key type does not match public key type');
    const p = pub as { [k: string]: Value };
    const ok = alg === 1 ? same(p.N, priv.N) && same(p.E, priv.E) : same(p.X, priv.X) && same(p.Y, priv.Y);
    if (!ok) throw new BuiltinError('tls: private key does not match public key');
  } else if (alg === 4) {
    if (parsed.type !== 'ed25519' || typeof priv !== 'string') throw new BuiltinError('tls: private key type does not match public key type');
    if (Buffer.from(priv, 'base64').subarray(32).toString('base64') !== pub) throw new BuiltinError('tls: private key does not match public key');
  } else throw new BuiltinError('tls: unknown public key algorithm');
  return {
    Certificate: ders.map((d) => d.toString('base64')),
    PrivateKey: parsed.value,
    SupportedSignatureAlgorithms: null,
    OCSPStaple: null,
    SignedCertificateTimestamps: null,
    Leaf: leaf.value,
  };
}
