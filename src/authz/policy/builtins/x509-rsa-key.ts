import { BuiltinError, NotImplementedError } from './builtin.js';
import { DerReader, TAG } from './der.js';
import type { Value } from './json-values.js';

/**
 * RSA private keys as Go 1.26 reads them (x509.ParsePKCS1PrivateKey): the integers of the PKCS #1 structure,
 * then the consistency checks of crypto/rsa's Validate (p·q = n, the CRT values against d, e and the primes,
 * |p − q| and d not too small, e odd and in range), so a damaged key is refused where Go refuses it rather
 * than accepted the way OpenSSL's import would accept it.
 */
export const RSA_OID = '1.2.840.113549.1.1.1';

const bitLen = (x: bigint): number => (x <= 0n ? 0 : x.toString(2).length);
const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

function modInverse(a: bigint, m: bigint): bigint | undefined {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return oldR === 1n ? mod(oldS, m) : undefined;
}

export function rsaPrivateKeyValue(der: Buffer): Value {
  const seq = new DerReader(der).read(TAG.SEQUENCE);
  const r = seq && new DerReader(seq.content);
  const ints: bigint[] = [];
  for (let i = 0; i < 6 && r; i++) {
    const v = r.readInteger();
    if (v === undefined) throw new BuiltinError('asn1: structure error: malformed RSA private key');
    ints.push(v);
  }
  const [version, n, e, d, p, q] = ints as [bigint, bigint, bigint, bigint, bigint, bigint];
  const optional = (): bigint | undefined => (r?.peekTag() === TAG.INTEGER ? r.readInteger() : undefined);
  let dp = optional();
  let dq = optional();
  let qinv = optional();
  if (r && r.peekTag() === TAG.SEQUENCE) throw new NotImplementedError('crypto.x509: a multi-prime RSA private key');
  if (e > 0x7fffffffffffffffn || e < -0x8000000000000000n) throw new BuiltinError('asn1: structure error: integer too large');
  if (version > 1n) throw new BuiltinError('x509: unsupported private key version');
  if (n <= 0n || d <= 0n || p <= 0n || q <= 0n || (dp !== undefined && dp <= 0n) || (dq !== undefined && dq <= 0n) || (qinv !== undefined && qinv <= 0n)) {
    throw new BuiltinError('x509: private key contains zero or negative value');
  }
  const fail = (m: string): BuiltinError => new BuiltinError(`crypto/rsa: ${m}`);
  if (n % 2n === 0n) throw fail('public modulus is even');
  if (e < 2n) throw fail('public exponent too small or negative');
  if (e % 2n === 0n) throw fail('public exponent is even');
  if (e > 2n ** 31n - 1n) throw fail('public exponent too large');
  if (d >= n || p >= n || q >= n) throw fail('invalid private key');
  if (dp === undefined || dq === undefined || qinv === undefined) {
    dp = mod(d, p - 1n);
    dq = mod(d, q - 1n);
    qinv = modInverse(q, p);
    if (qinv === undefined) throw fail('prime factors are not relatively prime');
  }
  if (p * q !== n) throw fail('p * q != n');
  if (dp >= p - 1n || mod(e * dp, p - 1n) !== 1n) throw fail('invalid CRT exponent');
  if (dq >= q - 1n || mod(e * dq, q - 1n) !== 1n) throw fail('invalid CRT exponent');
  if (qinv >= p || mod(mod(q, p) * qinv, p) !== 1n) throw fail('invalid CRT coefficient');
  if (mod(d, p - 1n) !== dp) throw fail('d does not match dP');
  if (mod(d, q - 1n) !== dq) throw fail('d does not match dQ');
  if (p === q) throw fail('p == q');
  if (bitLen(p > q ? p - q : q - p) <= Math.floor(bitLen(n) / 2) - 100) throw fail('|p - q| too small');
  if (bitLen(d) <= Math.floor(bitLen(n) / 2)) throw fail('d too small');
  return { N: n, E: e, D: d, Primes: [p, q], Precomputed: { Dp: dp, Dq: dq, Qinv: qinv, CRTValues: [] } };
}
