import { BuiltinError } from './builtin.js';
import { DerReader, TAG, derBitString, derInteger, derOid, oidKey, type DerElement } from './der.js';
import type { Value } from './json-values.js';
import { parseExtensions } from './x509-extensions.js';
import { fillName } from './x509-name.js';
import { PK, parseAlgorithmIdentifier, publicKeyAlgorithm, publicKeyValue, signatureAlgorithm } from './x509-public-key.js';

const structureError = (what: string): BuiltinError => new BuiltinError(`asn1: structure error: ${what}`);
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** x509.ParseCertificateRequest, as encoding/json writes x509.CertificateRequest. */
export function parseCertificateRequest(der: Buffer): Value {
  const top = new DerReader(der);
  const outer = top.read(TAG.SEQUENCE);
  if (!outer) throw structureError("tags don't match (16 vs the input's first element)");
  if (!top.empty()) throw new BuiltinError('asn1: syntax error: trailing data');
  const r = new DerReader(outer.content);
  const tbsEl = r.read(TAG.SEQUENCE);
  const sigAi = r.read(TAG.SEQUENCE);
  const sigBits = r.read(TAG.BIT_STRING);
  if (!tbsEl || !sigAi || !sigBits) throw structureError('certificate request is not a SEQUENCE of request, algorithm and signature');
  const sig = derBitString(sigBits.content);
  if (!sig) throw new BuiltinError('asn1: syntax error: invalid padding bits in BIT STRING');

  const tbs = new DerReader(tbsEl.content);
  const version = tbs.readInteger();
  const subject = tbs.read(TAG.SEQUENCE);
  const spki = tbs.read(TAG.SEQUENCE);
  const attrs = tbs.read(0xa0);
  if (version === undefined || !subject || !spki || !attrs) throw structureError('malformed certificate request info');

  const spkiR = new DerReader(spki.content);
  const pkAiEl = spkiR.read(TAG.SEQUENCE);
  const pkBits = spkiR.readBitString();
  if (!pkAiEl || !pkBits) throw structureError('malformed subject public key info');
  const pkAi = parseAlgorithmIdentifier(pkAiEl.content);
  const pkAlg = publicKeyAlgorithm(pkAi.oid);

  const rawAttributes: Buffer[] = [];
  const ar = new DerReader(attrs.content);
  while (!ar.empty()) {
    const a = ar.readAny();
    if (!a) throw structureError('malformed attributes');
    rawAttributes.push(a.element);
  }
  const extensionsDer = csrExtensions(rawAttributes);
  const ext = parseCsrExtensions(extensionsDer);
  const sigAlg = parseAlgorithmIdentifier(sigAi.content);
  return {
    Raw: outer.element.toString('base64'),
    RawTBSCertificateRequest: tbsEl.element.toString('base64'),
    RawSubjectPublicKeyInfo: spki.element.toString('base64'),
    RawSubject: subject.element.toString('base64'),
    Version: Number(version),
    Signature: rightAlignBits(sig.bytes, sig.bitLength).toString('base64'),
    SignatureAlgorithm: signatureAlgorithm(sigAlg),
    PublicKeyAlgorithm: pkAlg,
    PublicKey: pkAlg !== PK.Unknown ? publicKeyValue(pkAlg, pkAi, pkBits, spki.element) : null,
    Subject: csrSubject(subject.element),
    Attributes: nullIfEmpty(rawAttributes.map(attributeSet).filter((a): a is Value => a !== undefined)),
    Extensions: ext.Extensions ?? null,
    ExtraExtensions: null,
    DNSNames: ext.DNSNames ?? null,
    EmailAddresses: ext.EmailAddresses ?? null,
    IPAddresses: ext.IPAddresses ?? null,
    URIs: ext.URIs ?? null,
  };
}

const nullIfEmpty = (xs: Value[]): Value[] | null => (xs.length > 0 ? xs : null);

function rightAlignBits(bytes: Buffer, bitLength: number): Buffer {
  const shift = 8 - (bitLength % 8);
  if (shift === 8 || bytes.length === 0) return bytes;
  const out = Buffer.alloc(bytes.length);
  out[0] = (bytes[0] as number) >> shift;
  for (let i = 1; i < bytes.length; i++) out[i] = (((bytes[i - 1] as number) << (8 - shift)) | ((bytes[i] as number) >> shift)) & 0xff;
  return out;
}

/**
 * The first value of every extensionRequest attribute (parseCSRExtensions), as one extensions SEQUENCE's
 * contents. An attribute that is not {OID, SET OF any} is skipped, as Go's pkcs10Attribute unmarshalling
 * skips it; an extension request whose first value is not a list of extensions is an error.
 */
function csrExtensions(rawAttributes: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const raw of rawAttributes) {
    const seq = new DerReader(raw).read(TAG.SEQUENCE);
    if (!seq) continue;
    const r = new DerReader(seq.content);
    const id = r.readOid();
    const set = r.read(TAG.SET);
    if (!id || !set) continue;
    const values: DerElement[] = [];
    const vr = new DerReader(set.content);
    while (!vr.empty()) {
      const v = vr.readAny();
      if (!v) break;
      values.push(v);
    }
    if (!vr.empty() || values.length === 0 || oidKey(id) !== EXTENSION_REQUEST) continue;
    const first = values[0] as DerElement;
    if (first.tag !== TAG.SEQUENCE) throw structureError('extension request is not a SEQUENCE');
    out.push(first.content);
  }
  return out;
}

function parseCsrExtensions(lists: Buffer[]): { [key: string]: Value } {
  if (lists.length === 0) return {};
  const parsed = parseExtensions(Buffer.concat(lists), { duplicateMessage: 'x509: certificate request contains duplicate requested extensions', sanOnly: true });
  return parsed.fields;
}

/**
 * pkix.AttributeTypeAndValueSET as encoding/asn1 fills it: {Type, Value: [[{Type, Value}]]}, Value decoded
 * into `any` (strings, BOOLEAN, OCTET STRING as bytes, INTEGER, OID, BIT STRING; other types null). An attribute that
 * does not have that shape is left out, as Go does.
 */
function attributeSet(raw: Buffer): Value | undefined {
  const seq = new DerReader(raw).read(TAG.SEQUENCE);
  if (!seq) return undefined;
  const r = new DerReader(seq.content);
  const type = r.readOid();
  const set = r.read(TAG.SET);
  if (!type || !set || !r.empty()) return undefined;
  const values: Value[] = [];
  const sr = new DerReader(set.content);
  while (!sr.empty()) {
    const inner = sr.read(TAG.SEQUENCE);
    if (!inner) return undefined;
    const atvs: Value[] = [];
    const ir = new DerReader(inner.content);
    while (!ir.empty()) {
      const atv = ir.read(TAG.SEQUENCE);
      if (!atv) return undefined;
      const ar = new DerReader(atv.content);
      const t = ar.readOid();
      const v = ar.readAny();
      if (!t || !v) return undefined;
      const decoded = anyValue(v.tag, v.content);
      if (decoded === undefined) return undefined;
      atvs.push({ Type: t, Value: decoded });
    }
    values.push(atvs);
  }
  return { Type: type, Value: values };
}

/**
 * A CSR's subject as Go reads it: encoding/asn1 into pkix.RDNSequence (values decoded into `any`, so a value
 * that is not a string stays in Names), then FillFromRDNSequence.
 */
function csrSubject(der: Buffer): Value {
  const seq = new DerReader(der).read(TAG.SEQUENCE);
  if (!seq) throw structureError('malformed subject');
  const atvs: { type: number[]; value: Value }[] = [];
  const r = new DerReader(seq.content);
  while (!r.empty()) {
    const set = r.read(TAG.SET);
    if (!set) throw structureError('subject is not a SEQUENCE of SETs');
    const sr = new DerReader(set.content);
    while (!sr.empty()) {
      const atv = sr.read(TAG.SEQUENCE);
      const ar = atv && new DerReader(atv.content);
      const type = ar?.readOid();
      const v = ar?.readAny();
      if (!type || !v) throw structureError('malformed attribute in the subject');
      const value = anyValue(v.tag, v.content);
      if (value === undefined) throw new BuiltinError('asn1: syntax error: invalid value in the subject');
      atvs.push({ type, value });
    }
  }
  return fillName(atvs);
}

/** encoding/asn1's string types (its rules, not crypto/x509's: T61 bytes as they are, BMP without checks). */
function asn1AnyString(tag: number, c: Buffer): string {
  const ascii = (ok: (b: number) => boolean, what: string): string => {
    for (const b of c) if (!ok(b)) throw new Error(`invalid ${what}`);
    return c.toString('latin1');
  };
  switch (tag) {
    case TAG.PrintableString:
      return ascii((b) => /[A-Za-z0-9 '()+,\-./:=?*&]/.test(String.fromCharCode(b)), 'PrintableString');
    case TAG.NumericString:
      return ascii((b) => (b >= 0x30 && b <= 0x39) || b === 0x20, 'NumericString');
    case TAG.IA5String:
      return ascii((b) => b < 0x80, 'IA5String');
    case TAG.UTF8String:
      return new TextDecoder('utf-8', { fatal: true }).decode(c);
    case TAG.BMPString: {
      if (c.length % 2 !== 0) throw new Error('invalid BMPString');
      const units = c.length >= 2 && c[c.length - 1] === 0 && c[c.length - 2] === 0 ? c.subarray(0, c.length - 2) : c;
      return new TextDecoder('utf-16be').decode(units);
    }
    default:
      return c.toString('utf8'); // T61String: Go keeps the bytes (JSON then writes invalid UTF-8 as U+FFFD)
  }
}

/** encoding/asn1 into an empty interface; undefined when Go's parse of it fails. */
function anyValue(tag: number, c: Buffer): Value | undefined {
  try {
    switch (tag) {
      case TAG.PrintableString: case TAG.NumericString: case TAG.IA5String: case TAG.T61String: case TAG.UTF8String: case TAG.BMPString:
        return asn1AnyString(tag, c);
      case TAG.INTEGER: {
        const n = derInteger(c);
        return n === undefined || n > 0x7fffffffffffffffn || n < -0x8000000000000000n ? undefined : Number.isSafeInteger(Number(n)) ? Number(n) : n;
      }
      case TAG.BIT_STRING: {
        const b = derBitString(c);
        return b ? { Bytes: b.bytes.toString('base64'), BitLength: b.bitLength } : undefined;
      }
      case TAG.OID:
        return derOid(c) ?? undefined;
      case TAG.OCTET_STRING:
        return c.toString('base64');
      case TAG.BOOLEAN:
        return c.length === 1 && (c[0] === 0 || c[0] === 0xff) ? c[0] === 0xff : undefined;
      case TAG.UTCTime: case TAG.GeneralizedTime:
        return undefined; // a time in a CSR attribute: not reproduced, the attribute is left out (see docs)
      default:
        return null;
    }
  } catch {
    return undefined;
  }
}
