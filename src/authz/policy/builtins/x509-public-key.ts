import { createPublicKey } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import { DerReader, TAG, derOid, oidKey, type BitString } from './der.js';
import type { Value } from './json-values.js';

/** x509.PublicKeyAlgorithm and x509.SignatureAlgorithm numbers (Go's iota order). */
export const PK = { Unknown: 0, RSA: 1, DSA: 2, ECDSA: 3, Ed25519: 4 } as const;

const PK_OIDS: Record<string, number> = {
  '1.2.840.113549.1.1.1': PK.RSA,
  '1.2.840.10040.4.1': PK.DSA,
  '1.2.840.10045.2.1': PK.ECDSA,
  '1.3.101.112': PK.Ed25519,
};

const CURVES: Record<string, string> = {
  '1.3.132.0.33': 'P-224',
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
};

/** Signature algorithm OID -> [x509.SignatureAlgorithm, node hash, public key algorithm]. */
export const SIG_ALGS: Record<string, [number, string, number]> = {
  '1.2.840.113549.1.1.2': [1, 'md2', PK.RSA],
  '1.2.840.113549.1.1.4': [2, 'md5', PK.RSA],
  '1.2.840.113549.1.1.5': [3, 'sha1', PK.RSA],
  '1.3.14.3.2.29': [3, 'sha1', PK.RSA],
  '1.2.840.113549.1.1.11': [4, 'sha256', PK.RSA],
  '1.2.840.113549.1.1.12': [5, 'sha384', PK.RSA],
  '1.2.840.113549.1.1.13': [6, 'sha512', PK.RSA],
  '1.2.840.10040.4.3': [7, 'sha1', PK.DSA],
  '2.16.840.1.101.3.4.3.2': [8, 'sha256', PK.DSA],
  '1.2.840.10045.4.1': [9, 'sha1', PK.ECDSA],
  '1.2.840.10045.4.3.2': [10, 'sha256', PK.ECDSA],
  '1.2.840.10045.4.3.3': [11, 'sha384', PK.ECDSA],
  '1.2.840.10045.4.3.4': [12, 'sha512', PK.ECDSA],
  '1.3.101.112': [16, '', PK.Ed25519],
};
const PSS_OID = '1.2.840.113549.1.1.10';
const PSS_HASHES: Record<string, [number, string, number]> = {
  '2.16.840.1.101.3.4.2.1': [13, 'sha256', 32],
  '2.16.840.1.101.3.4.2.2': [14, 'sha384', 48],
  '2.16.840.1.101.3.4.2.3': [15, 'sha512', 64],
};

export interface AlgorithmIdentifier {
  oid: number[];
  params: Buffer | undefined;
}

export function parseAlgorithmIdentifier(content: Buffer): AlgorithmIdentifier {
  const r = new DerReader(content);
  const oid = r.readOid();
  if (!oid) throw new BuiltinError('x509: malformed OID');
  if (r.empty()) return { oid, params: undefined };
  const p = r.readAny();
  if (!p) throw new BuiltinError('x509: malformed parameters');
  return { oid, params: p.element };
}

/** getSignatureAlgorithmFromAI: the x509.SignatureAlgorithm number (0 unknown). */
export function signatureAlgorithm(ai: AlgorithmIdentifier): number {
  const key = oidKey(ai.oid);
  if (key === '1.3.101.112' && ai.params) return 0;
  if (key !== PSS_OID) return SIG_ALGS[key]?.[0] ?? 0;
  return pssAlgorithm(ai.params)?.[0] ?? 0;
}

/** RSASSA-PSS parameters in the three shapes Go accepts (MGF1 with the same hash, salt = hash size, trailer 1). */
export function pssAlgorithm(params: Buffer | undefined): [number, string, number] | undefined {
  if (!params) return undefined;
  const seq = new DerReader(params).read(TAG.SEQUENCE);
  if (!seq) return undefined;
  const r = new DerReader(seq.content);
  const hashAi = r.read(0xa0);
  const mgf = r.read(0xa1);
  const salt = r.read(0xa2);
  const trailer = r.read(0xa3);
  if (!hashAi || !mgf || !salt || !r.empty()) return undefined;
  const hash = innerAi(hashAi.content);
  const mgfAi = innerAi(mgf.content);
  if (!hash || !mgfAi || oidKey(mgfAi.oid) !== '1.2.840.113549.1.1.8' || !mgfAi.params) return undefined;
  const mgfHash = innerAi(mgfAi.params);
  const nullOk = (p: Buffer | undefined): boolean => !p || (p.length === 2 && p[0] === 5 && p[1] === 0);
  const saltLen = new DerReader(salt.content).readInteger();
  const trailerVal = trailer ? new DerReader(trailer.content).readInteger() : 1n;
  const found = PSS_HASHES[oidKey(hash.oid)];
  if (!found || !mgfHash || oidKey(mgfHash.oid) !== oidKey(hash.oid) || !nullOk(hash.params) || !nullOk(mgfHash.params) || trailerVal !== 1n) return undefined;
  return saltLen === BigInt(found[2]) ? found : undefined;
}

function innerAi(wrapped: Buffer): AlgorithmIdentifier | undefined {
  const seq = new DerReader(wrapped).read(TAG.SEQUENCE);
  if (!seq) return undefined;
  try {
    return parseAlgorithmIdentifier(seq.content);
  } catch {
    return undefined;
  }
}

export function publicKeyAlgorithm(oid: number[]): number {
  return PK_OIDS[oidKey(oid)] ?? PK.Unknown;
}

const b64uInt = (s: string): bigint => BigInt(`0x${Buffer.from(s, 'base64url').toString('hex') || '0'}`);

/** crypto/x509 parsePublicKey, as encoding/json writes the key: rsa {N, E}, ecdsa {Curve: {}, X, Y}, ed25519 base64, dsa. */
export function publicKeyValue(alg: number, ai: AlgorithmIdentifier, key: BitString, spki: Buffer): Value {
  const bytes = key.bytes;
  if (alg === PK.RSA) {
    if (!ai.params || ai.params.length !== 2 || ai.params[0] !== TAG.NULL) throw new BuiltinError('x509: RSA key missing NULL parameters');
    const seq = new DerReader(bytes).read(TAG.SEQUENCE);
    if (!seq) throw new BuiltinError('x509: invalid RSA public key');
    const r = new DerReader(seq.content);
    const n = r.readInteger();
    if (n === undefined) throw new BuiltinError('x509: invalid RSA modulus');
    const e = r.readInteger();
    if (e === undefined || e > 0x7fffffffffffffffn) throw new BuiltinError('x509: invalid RSA public exponent');
    if (n <= 0n) throw new BuiltinError('x509: RSA modulus is not a positive number');
    if (e <= 0n) throw new BuiltinError('x509: RSA public exponent is not a positive number');
    return { N: n, E: e };
  }
  if (alg === PK.ECDSA) {
    const curveOid = ai.params ? new DerReader(ai.params).readOid() : undefined;
    if (!curveOid) throw new BuiltinError('x509: invalid ECDSA parameters');
    if (!CURVES[oidKey(curveOid)]) throw new BuiltinError('x509: unsupported elliptic curve');
    if (bytes[0] !== 4) throw new BuiltinError('x509: failed to unmarshal elliptic curve point');
    try {
      const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
      return { Curve: {}, X: b64uInt(jwk.x as string), Y: b64uInt(jwk.y as string) };
    } catch {
      throw new BuiltinError('x509: failed to unmarshal elliptic curve point');
    }
  }
  if (alg === PK.Ed25519) {
    if (ai.params) throw new BuiltinError('x509: Ed25519 key encoded with illegal parameters');
    if (bytes.length !== 32) throw new BuiltinError('x509: wrong Ed25519 public key size');
    return bytes.toString('base64');
  }
  if (alg === PK.DSA) {
    const y = new DerReader(bytes).readInteger();
    const params = ai.params ? new DerReader(ai.params).read(TAG.SEQUENCE) : undefined;
    const pr = params ? new DerReader(params.content) : undefined;
    const p = pr?.readInteger();
    const q = pr?.readInteger();
    const g = pr?.readInteger();
    if (y === undefined || p === undefined || q === undefined || g === undefined) throw new BuiltinError('x509: invalid DSA public key');
    if (y <= 0n || p <= 0n || q <= 0n || g <= 0n) throw new BuiltinError('x509: zero or negative DSA parameter');
    return { Parameters: { P: p, Q: q, G: g }, Y: y };
  }
  return null;
}

export { derOid };
