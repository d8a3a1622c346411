import { BuiltinError } from './builtin.js';
import { DerReader, TAG, ctx, derBitString } from './der.js';
import type { Value } from './json-values.js';
import { parseExtensions, type ParsedExtensions } from './x509-extensions.js';
import { parseName } from './x509-name.js';
import { PK, parseAlgorithmIdentifier, publicKeyAlgorithm, publicKeyValue, signatureAlgorithm } from './x509-public-key.js';

/** A parsed certificate: Go's x509.Certificate as encoding/json writes it, and what chain verification reads. */
export interface Certificate {
  value: { [key: string]: Value };
  raw: Buffer;
  tbs: Buffer;
  spki: Buffer;
  rawSubject: Buffer;
  rawIssuer: Buffer;
  signature: Buffer;
  signatureOid: number[];
  signatureParams: Buffer | undefined;
  publicKeyAlgorithm: number;
  version: number;
  notBefore: bigint;
  notAfter: bigint;
  ext: ParsedExtensions;
}

const malformed = (what: string): BuiltinError => new BuiltinError(`x509: malformed ${what}`);

/** crypto/x509 parseCertificate: the first certificate of `der`. */
export function parseCertificate(der: Buffer): Certificate {
  const outer = new DerReader(der).read(TAG.SEQUENCE);
  if (!outer) throw malformed('certificate');
  const input = new DerReader(outer.content);
  const tbsEl = input.read(TAG.SEQUENCE);
  if (!tbsEl) throw malformed('tbs certificate');
  const tbs = new DerReader(tbsEl.content);

  let version = 0;
  const v = tbs.readOptional(ctx(0, true));
  if (v === undefined) throw malformed('version');
  if (v) {
    const n = new DerReader(v.content).readInteger();
    if (n === undefined || n < 0n) throw malformed('version');
    version = Number(n);
  }
  version++;
  if (version > 3) throw new BuiltinError('x509: invalid version');

  const serial = tbs.readInteger();
  if (serial === undefined) throw malformed('serial number');
  if (serial < 0n) throw new BuiltinError('x509: negative serial number');

  const sigAi = tbs.read(TAG.SEQUENCE);
  if (!sigAi) throw malformed('signature algorithm identifier');
  const outerSigAi = input.read(TAG.SEQUENCE);
  if (!outerSigAi) throw malformed('algorithm identifier');
  if (!outerSigAi.content.equals(sigAi.content)) throw new BuiltinError("x509: inner and outer signature algorithm identifiers don't match");
  const sigAlg = parseAlgorithmIdentifier(sigAi.content);

  const issuer = tbs.read(TAG.SEQUENCE);
  if (!issuer) throw malformed('issuer');
  const issuerName = parseName(issuer.element);

  const validity = tbs.read(TAG.SEQUENCE);
  if (!validity) throw malformed('validity');
  const vr = new DerReader(validity.content);
  const notBefore = readTime(vr);
  const notAfter = readTime(vr);

  const subject = tbs.read(TAG.SEQUENCE);
  if (!subject) throw malformed('issuer');
  const subjectName = parseName(subject.element);

  const spki = tbs.read(TAG.SEQUENCE);
  if (!spki) throw malformed('spki');
  const spkiR = new DerReader(spki.content);
  const pkAi = spkiR.read(TAG.SEQUENCE);
  if (!pkAi) throw malformed('public key algorithm identifier');
  const pkAlg = parseAlgorithmIdentifier(pkAi.content);
  const pkAlgorithm = publicKeyAlgorithm(pkAlg.oid);
  const spk = spkiR.readBitString();
  if (!spk) throw malformed('subjectPublicKey');
  const publicKey = pkAlgorithm !== PK.Unknown ? publicKeyValue(pkAlgorithm, pkAlg, spk, spki.element) : null;

  let ext = parseExtensions(undefined);
  if (version > 1) {
    if (tbs.readOptional(ctx(1)) === undefined) throw malformed('issuerUniqueID');
    if (tbs.readOptional(ctx(2)) === undefined) throw malformed('subjectUniqueID');
    if (version === 3) {
      const exts = tbs.readOptional(ctx(3, true));
      if (exts === undefined) throw malformed('extensions');
      if (exts) {
        const seq = new DerReader(exts.content).read(TAG.SEQUENCE);
        if (!seq) throw malformed('extensions');
        ext = parseExtensions(seq.content);
      }
    }
  }

  const sigEl = input.read(TAG.BIT_STRING);
  const sig = sigEl ? derBitString(sigEl.content) : undefined;
  if (!sig) throw malformed('signature');
  const signature = rightAlign(sig.bytes, sig.bitLength);

  const value: { [key: string]: Value } = {
    Raw: outer.element.toString('base64'),
    RawTBSCertificate: tbsEl.element.toString('base64'),
    RawSubjectPublicKeyInfo: spki.element.toString('base64'),
    RawSubject: subject.element.toString('base64'),
    RawIssuer: issuer.element.toString('base64'),
    Signature: signature.toString('base64'),
    SignatureAlgorithm: signatureAlgorithm(sigAlg),
    PublicKeyAlgorithm: pkAlgorithm,
    PublicKey: publicKey,
    Version: version,
    SerialNumber: serial,
    Issuer: issuerName,
    Subject: subjectName,
    NotBefore: rfc3339(notBefore),
    NotAfter: rfc3339(notAfter),
    ExtraExtensions: null,
    ...ext.fields,
  };
  return {
    value,
    raw: outer.element,
    tbs: tbsEl.element,
    spki: spki.element,
    rawSubject: subject.element,
    rawIssuer: issuer.element,
    signature,
    signatureOid: sigAlg.oid,
    signatureParams: sigAlg.params,
    publicKeyAlgorithm: pkAlgorithm,
    version,
    notBefore: notBefore.ns,
    notAfter: notAfter.ns,
    ext,
  };
}

/** x509.ParseCertificates: consecutive DER certificates. */
export function parseCertificates(der: Buffer): Certificate[] {
  const out: Certificate[] = [];
  let rest = der;
  while (rest.length > 0) {
    const c = parseCertificate(rest);
    out.push(c);
    rest = rest.subarray(c.raw.length);
  }
  return out;
}

function rightAlign(bytes: Buffer, bitLength: number): Buffer {
  const shift = 8 - (bitLength % 8);
  if (shift === 8 || bytes.length === 0) return bytes;
  const out = Buffer.alloc(bytes.length);
  out[0] = (bytes[0] as number) >> shift;
  for (let i = 1; i < bytes.length; i++) out[i] = (((bytes[i - 1] as number) << (8 - shift)) | ((bytes[i] as number) >> shift)) & 0xff;
  return out;
}

interface GoTime {
  ns: bigint;
  /** Offset from UTC in minutes, as written in the certificate. */
  offset: number;
}

/** UTCTime / GeneralizedTime as cryptobyte reads them (a form Go writes back identically). */
function readTime(r: DerReader): GoTime {
  const tag = r.peekTag();
  if (tag === TAG.UTCTime) {
    const e = r.read(TAG.UTCTime);
    const t = e && parseTimeText(e.content.toString('latin1'), true);
    if (!t) throw new BuiltinError('x509: malformed UTCTime');
    return t;
  }
  if (tag === TAG.GeneralizedTime) {
    const e = r.read(TAG.GeneralizedTime);
    const t = e && parseTimeText(e.content.toString('latin1'), false);
    if (!t) throw new BuiltinError('x509: malformed GeneralizedTime');
    return t;
  }
  throw new BuiltinError('x509: unsupported time format');
}

function parseTimeText(s: string, utc: boolean): GoTime | undefined {
  const m = (utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(Z|[+-]\d{4})$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(Z|[+-]\d{4})$/).exec(s);
  if (!m) return undefined;
  let year = Number(m[1]);
  if (utc) year += year >= 50 ? 1900 : 2000;
  const [mo, d, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const zone = m[7] as string;
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
  if ((mo as number) < 1 || (mo as number) > 12 || (d as number) < 1 || (h as number) > 23 || (mi as number) > 59 || (se as number) > 59) return undefined;
  const ms = Date.UTC(year, (mo as number) - 1, d, h, mi, se) - offset * 60_000;
  const check = new Date(Date.UTC(year, (mo as number) - 1, d));
  if (check.getUTCDate() !== d) return undefined; // 31 February
  return { ns: BigInt(ms) * 1_000_000n, offset };
}

/** time.Time as encoding/json writes it (RFC 3339, "Z" for UTC, the certificate's offset otherwise). */
function rfc3339(t: GoTime): string {
  const local = new Date(Number(t.ns / 1_000_000n) + t.offset * 60_000);
  const base = local.toISOString().slice(0, 19);
  if (t.offset === 0) return `${base}Z`;
  const a = Math.abs(t.offset);
  return `${base}${t.offset < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}
