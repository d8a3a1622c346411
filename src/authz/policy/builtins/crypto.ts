import { createHash, createHmac, createPrivateKey, timingSafeEqual } from 'node:crypto';
import { BuiltinError, stringArg, type BuiltinTable } from './builtin.js';
import type { Value } from './json-values.js';
import { base64Std } from './pem.js';

/** crypto.* hashes and HMACs: hex digests of the UTF-8 bytes, as OPA's topdown/crypto.go. */
const hash = (alg: string) => (a: Parameters<BuiltinTable[string]>[0]) => createHash(alg).update(stringArg(a, 0), 'utf8').digest('hex');
const hmac = (alg: string) => (a: Parameters<BuiltinTable[string]>[0]) =>
  createHmac(alg, Buffer.from(stringArg(a, 1), 'utf8')).update(stringArg(a, 0), 'utf8').digest('hex');

const PEM_BLOCKS = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;
const PRIVATE_KEY_BLOCKS = new Set(['RSA PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY']);

/** crypto.x509.parse_rsa_private_key: the first private key of PEM (or base64 PEM) data, as a JWK. */
function privateKeyJwk(input: string): Value {
  if (input === '') throw new BuiltinError('input PEM data was empty');
  let pem = input;
  if (!pem.startsWith('-----BEGIN')) {
    const bytes = base64Std(pem);
    if (!bytes) throw new BuiltinError('illegal base64 data at input byte 0');
    pem = bytes.toString('utf8');
  }
  for (const block of pem.matchAll(PEM_BLOCKS)) {
    if (!PRIVATE_KEY_BLOCKS.has(block[1] as string)) continue;
    try {
      return createPrivateKey(block[0]).export({ format: 'jwk' }) as unknown as Value;
    } catch (err) {
      throw new BuiltinError((err as Error).message);
    }
  }
  return null;
}

export const cryptoBuiltins: BuiltinTable = {
  'crypto.x509.parse_rsa_private_key': (a) => privateKeyJwk(stringArg(a, 0)),
  'crypto.md5': hash('md5'),
  'crypto.sha1': hash('sha1'),
  'crypto.sha256': hash('sha256'),
  'crypto.hmac.md5': hmac('md5'),
  'crypto.hmac.sha1': hmac('sha1'),
  'crypto.hmac.sha256': hmac('sha256'),
  'crypto.hmac.sha512': hmac('sha512'),
  'crypto.hmac.equal': (a) => {
    const x = Buffer.from(stringArg(a, 0), 'utf8');
    const y = Buffer.from(stringArg(a, 1), 'utf8');
    // hmac.Equal: constant time for equal lengths, false otherwise
    return x.length === y.length && timingSafeEqual(x, y);
  },
};
