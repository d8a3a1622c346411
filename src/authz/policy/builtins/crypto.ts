import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { stringArg, type BuiltinTable } from './builtin.js';

/** crypto.* hashes and HMACs: hex digests of the UTF-8 bytes, as OPA's topdown/crypto.go. */
const hash = (alg: string) => (a: Parameters<BuiltinTable[string]>[0]) => createHash(alg).update(stringArg(a, 0), 'utf8').digest('hex');
const hmac = (alg: string) => (a: Parameters<BuiltinTable[string]>[0]) =>
  createHmac(alg, Buffer.from(stringArg(a, 1), 'utf8')).update(stringArg(a, 0), 'utf8').digest('hex');

export const cryptoBuiltins: BuiltinTable = {
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
