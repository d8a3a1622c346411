import { createECDH } from 'node:crypto';
import { BuiltinError } from './builtin.js';
import { DerReader, TAG, ctx, derBitString, oidKey } from './der.js';
import type { Value } from './json-values.js';

/**
 * EC private keys as Go's crypto/x509 reads them (parseECPrivateKey): the scalar D from the SEC 1 structure,
 * the curve from the key or from its PKCS#8 wrapper, and the public point computed from D; the public key the
 * file carries is not read (OpenSSL would trust it, or refuse the file when it is damaged).
 */
const CURVES: Record<string, { name: string; size: number }> = {
  '1.3.132.0.33': { name: 'secp224r1', size: 28 },
  '1.2.840.10045.3.1.7': { name: 'prime256v1', size: 32 },
  '1.3.132.0.34': { name: 'secp384r1', size: 48 },
  '1.3.132.0.35': { name: 'secp521r1', size: 66 },
};

export const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1';

const big = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);

/** `curveOid`: the named curve of a PKCS#8 wrapper, when the key comes in one. */
export function ecPrivateKeyValue(der: Buffer, curveOid?: number[]): Value {
  const seq = new DerReader(der).read(TAG.SEQUENCE);
  const r = seq && new DerReader(seq.content);
  const version = r?.readInteger();
  const d = r?.read(TAG.OCTET_STRING);
  if (!r || version === undefined || !d) throw new BuiltinError('x509: failed to parse EC private key: asn1: structure error');
  let keyCurve: number[] | undefined;
  const named = r.readOptional(ctx(0, true));
  if (named === undefined) throw new BuiltinError('x509: failed to parse EC private key: asn1: structure error');
  if (named) keyCurve = new DerReader(named.content).readOid();
  // the public key is not used, but encoding/asn1 still reads it: a damaged one fails the key
  const pub = r.readOptional(ctx(1, true));
  const bits = pub ? new DerReader(pub.content).read(TAG.BIT_STRING) : undefined;
  if (pub === undefined || (pub && (!bits || !derBitString(bits.content)))) throw new BuiltinError('x509: failed to parse EC private key: asn1: structure error');
  if (version !== 1n) throw new BuiltinError(`x509: unknown EC private key version ${version}`);
  const curve = CURVES[oidKey(curveOid ?? keyCurve ?? [])];
  if (!curve) throw new BuiltinError('x509: unknown elliptic curve');
  let scalar = d.content;
  while (scalar.length > curve.size) {
    if (scalar[0] !== 0) throw new BuiltinError('x509: invalid private key length');
    scalar = scalar.subarray(1);
  }
  const padded = Buffer.concat([Buffer.alloc(curve.size - scalar.length), scalar]);
  let point: Buffer;
  try {
    const ecdh = createECDH(curve.name);
    ecdh.setPrivateKey(padded);
    point = ecdh.getPublicKey();
  } catch {
    throw new BuiltinError('crypto/ecdsa: invalid private key');
  }
  const half = (point.length - 1) / 2;
  return { Curve: {}, X: big(point.subarray(1, 1 + half)), Y: big(point.subarray(1 + half)), D: big(padded) };
}

/** The algorithm of a PKCS#8 wrapper and its EC curve parameter, or undefined when it is not one. */
export function pkcs8Algorithm(der: Buffer): { oid: string; curve: number[] | undefined; hasParams: boolean; key: Buffer } | undefined {
  const seq = new DerReader(der).read(TAG.SEQUENCE);
  const r = seq && new DerReader(seq.content);
  if (!r || r.readInteger() === undefined) return undefined;
  const ai = r.read(TAG.SEQUENCE);
  const key = r.read(TAG.OCTET_STRING);
  if (!ai || !key) return undefined;
  const ar = new DerReader(ai.content);
  const oid = ar.readOid();
  if (!oid) return undefined;
  const hasParams = !ar.empty();
  const curve = ar.peekTag() === TAG.OID ? ar.readOid() : undefined;
  return { oid: oidKey(oid), curve, hasParams, key: key.content };
}
