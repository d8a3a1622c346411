import { BuiltinError, objectArg, stringArg, type BuiltinTable } from './builtin.js';
import { RegoSet, type Value } from './json-values.js';
import { base64Error, base64Std, pemDecode } from './pem.js';
import { parseCertificates, type Certificate } from './x509-certificate.js';
import { parseCertificateRequest } from './x509-csr.js';
import { parseKeyPair, parsePrivateKeys } from './x509-keys.js';
import { isVerifyFailure, verifyChain, type VerifyOptions } from './x509-verify.js';

/**
 * crypto.x509.* and crypto.parse_private_keys, after OPA's topdown/crypto.go: certificates as Go's
 * x509.Certificate marshalled by encoding/json (bytes in base64, times in RFC 3339, big integers exact),
 * verification as Go's Certificate.Verify with the first certificate as the root and the last as the leaf.
 */

/** OPA's getX509CertsFromString: PEM, base64 of PEM, or base64 of DER. */
function certificatesFrom(input: string): Certificate[] {
  if (input.startsWith('-----BEGIN')) return certificatesFromPem(Buffer.from(input, 'utf8'));
  const bytes = base64Std(input);
  if (!bytes) throw new BuiltinError(base64Error(input));
  if (bytes.subarray(0, 10).toString('latin1') === '-----BEGIN') return certificatesFromPem(bytes);
  return parseCertificates(bytes);
}

function certificatesFromPem(pem: Buffer): Certificate[] {
  const ders: Buffer[] = [];
  for (let rest = pem; rest.length > 0; ) {
    const d = pemDecode(rest);
    if (!d) break;
    if (d.block.type !== 'CERTIFICATE') throw new BuiltinError(`PEM block type is '${d.block.type}', expected CERTIFICATE`);
    ders.push(d.block.bytes);
    rest = d.rest;
  }
  return parseCertificates(Buffer.concat(ders));
}

/** extendCertificates: the certificate plus URIStrings (url.URL.String() of each SAN URI). */
const extended = (c: Certificate): Value => ({ ...c.value, URIStrings: c.ext.uriStrings.length > 0 ? c.ext.uriStrings : null });

const NOT_VERIFIED: Value = [false, []];

const KEY_USAGES: Record<string, number> = {
  KeyUsageAny: 0, KeyUsageServerAuth: 1, KeyUsageClientAuth: 2, KeyUsageCodeSigning: 3, KeyUsageEmailProtection: 4, KeyUsageIPSECEndSystem: 5,
  KeyUsageIPSECTunnel: 6, KeyUsageIPSECUser: 7, KeyUsageTimeStamping: 8, KeyUsageOCSPSigning: 9, KeyUsageMicrosoftServerGatedCrypto: 10,
  KeyUsageNetscapeServerGatedCrypto: 11, KeyUsageMicrosoftCommercialCodeSigning: 12, KeyUsageMicrosoftKernelCodeSigning: 13,
};

/** OPA's extractVerifyOpts, keys in Rego's (sorted) order. */
function verifyOptions(options: { [key: string]: Value }): VerifyOptions {
  const out: VerifyOptions = { keyUsages: [] };
  for (const key of Object.keys(options).sort()) {
    const v = options[key] as Value;
    if (key === 'DNSName') {
      if (typeof v !== 'string') throw new BuiltinError("'DNSName' should be a string");
      out.dnsName = v;
    } else if (key === 'CurrentTime') {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new BuiltinError("'CurrentTime' should be a number");
      if ((typeof v === 'number' && (!Number.isInteger(v) || Math.abs(v) >= 2 ** 63)) || (typeof v === 'bigint' && (v > 0x7fffffffffffffffn || v < -0x8000000000000000n))) {
        throw new BuiltinError("'CurrentTime' should be a valid int64 number");
      }
      out.currentTime = BigInt(v);
    } else if (key === 'MaxConstraintComparisons') {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new BuiltinError("'MaxConstraintComparisons' should be a number");
      if (typeof v === 'number' && !Number.isInteger(v)) throw new BuiltinError("'MaxConstraintComparisons' should be a valid number");
      // Go 1.26's chain verification no longer reads it
    } else if (key === 'KeyUsages') {
      const items = Array.isArray(v) ? v : v instanceof RegoSet ? v.items : undefined;
      if (!items) throw new BuiltinError("'KeyUsages' should be an Array or Set");
      const invalid: string[] = [];
      for (const item of items) {
        if (typeof item !== 'string') continue;
        const usage = KEY_USAGES[item];
        if (usage === undefined) invalid.push(item);
        else out.keyUsages.push(usage);
      }
      if (invalid.length > 0) throw new BuiltinError(`invalid entries for 'KeyUsages' found: [${invalid.join(' ')}]`);
    } else throw new BuiltinError('invalid key option');
  }
  return out;
}

function parseAndVerify(input: string, options: () => VerifyOptions, now: bigint, extend: boolean): Value {
  let certs: Certificate[];
  try {
    certs = certificatesFrom(input);
  } catch {
    return NOT_VERIFIED;
  }
  const opts = options(); // OPA parses before it reads the options
  try {
    const chain = verifyChain(certs, opts, now);
    return [true, chain.map((c) => (extend ? extended(c) : c.value))];
  } catch (err) {
    if (isVerifyFailure(err)) return NOT_VERIFIED;
    // fewer than two certificates: OPA reports that as a verification failure too
    if (certs.length < 2) return NOT_VERIFIED;
    throw err;
  }
}

/** crypto.x509.parse_certificate_request: PEM, base64 of PEM, or base64 of DER. */
function certificateRequest(input: string): Value {
  let bytes: Buffer;
  if (input.startsWith('-----BEGIN CERTIFICATE REQUEST-----')) bytes = Buffer.from(input, 'utf8');
  else {
    const b = base64Std(input);
    if (!b) throw new BuiltinError(base64Error(input));
    bytes = b;
  }
  const d = pemDecode(bytes);
  if (d && d.block.type !== 'CERTIFICATE REQUEST') throw new BuiltinError('invalid PEM-encoded certificate signing request');
  return parseCertificateRequest(d ? d.block.bytes : bytes);
}

export const x509Builtins: BuiltinTable = {
  'crypto.x509.parse_certificates': (a) => certificatesFrom(stringArg(a, 0)).map(extended),
  'crypto.x509.parse_and_verify_certificates': (a, ctx) => parseAndVerify(stringArg(a, 0), () => ({ keyUsages: [] }), ctx.nowNs(), true),
  'crypto.x509.parse_and_verify_certificates_with_options': (a, ctx) => {
    const input = stringArg(a, 0);
    const options = objectArg(a, 1);
    return parseAndVerify(input, () => verifyOptions(options), ctx.nowNs(), false);
  },
  'crypto.x509.parse_certificate_request': (a) => certificateRequest(stringArg(a, 0)),
  'crypto.x509.parse_keypair': (a) => parseKeyPair(stringArg(a, 0), stringArg(a, 1)),
  'crypto.parse_private_keys': (a) => parsePrivateKeys(stringArg(a, 0)),
};

/** Builtins whose options may be sets (KeyUsages), read in Rego syntax. */
export const X509_SET_AWARE = ['crypto.x509.parse_and_verify_certificates_with_options'];
