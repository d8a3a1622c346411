import { BuiltinError } from './builtin.js';
import { DerReader, TAG, bitAt, ctx, derOidString, oidKey } from './der.js';
import type { Value } from './json-values.js';
import type { NameConstraints } from './x509-constraints.js';
import { nameConstraints, subjectAltNames } from './x509-general-names.js';

/** The certificate fields crypto/x509 processExtensions fills, and what chain verification reads. */
export interface ParsedExtensions {
  fields: { [key: string]: Value };
  extKeyUsage: number[];
  unknownExtKeyUsage: number;
  unhandledCritical: number;
  basicConstraintsValid: boolean;
  isCA: boolean;
  maxPathLen: number;
  keyUsage: number;
  dnsNames: string[];
  ipAddresses: Buffer[];
  sanValue: Buffer | undefined;
  /** url.URL.String() of each SAN URI (OPA's URIStrings). */
  uriStrings: string[];
  hasRequireExplicitPolicy: boolean;
  /** For Go's chain name-constraint check. */
  nameConstraints: NameConstraints | undefined;
  hasSan: boolean;
  emails: string[];
  uriHosts: string[];
}

const EKU_OIDS = [
  '2.5.29.37.0', '1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4', '1.3.6.1.5.5.7.3.5', '1.3.6.1.5.5.7.3.6',
  '1.3.6.1.5.5.7.3.7', '1.3.6.1.5.5.7.3.8', '1.3.6.1.5.5.7.3.9', '1.3.6.1.4.1.311.10.3.3', '2.16.840.1.113730.4.1', '1.3.6.1.4.1.311.2.1.22',
  '1.3.6.1.4.1.311.61.1.1',
];

const fail = (msg: string): BuiltinError => new BuiltinError(`x509: ${msg}`);
const nullIfEmpty = <T extends Value>(xs: T[]): T[] | null => (xs.length > 0 ? xs : null);

/** crypto/x509 parseExtension for each extension, then processExtensions. `der`: the SEQUENCE's contents (undefined: none). */
export function parseExtensions(der: Buffer | undefined, opts: { duplicateMessage?: string; sanOnly?: boolean } = {}): ParsedExtensions {
  const f: { [key: string]: Value } = {
    Extensions: null, UnhandledCriticalExtensions: null, KeyUsage: 0, ExtKeyUsage: null, UnknownExtKeyUsage: null,
    BasicConstraintsValid: false, IsCA: false, MaxPathLen: 0, MaxPathLenZero: false, SubjectKeyId: null, AuthorityKeyId: null,
    OCSPServer: null, IssuingCertificateURL: null, DNSNames: null, EmailAddresses: null, IPAddresses: null, URIs: null,
    PermittedDNSDomainsCritical: false, PermittedDNSDomains: null, ExcludedDNSDomains: null, PermittedIPRanges: null, ExcludedIPRanges: null,
    PermittedEmailAddresses: null, ExcludedEmailAddresses: null, PermittedURIDomains: null, ExcludedURIDomains: null,
    CRLDistributionPoints: null, PolicyIdentifiers: null, Policies: null, InhibitAnyPolicy: 0, InhibitAnyPolicyZero: false,
    InhibitPolicyMapping: 0, InhibitPolicyMappingZero: false, RequireExplicitPolicy: 0, RequireExplicitPolicyZero: false, PolicyMappings: null,
  };
  const out: ParsedExtensions = {
    fields: f, extKeyUsage: [], unknownExtKeyUsage: 0, unhandledCritical: 0, basicConstraintsValid: false, isCA: false, maxPathLen: 0,
    keyUsage: 0, dnsNames: [], ipAddresses: [], sanValue: undefined, uriStrings: [], hasRequireExplicitPolicy: false,
    nameConstraints: undefined, hasSan: false, emails: [], uriHosts: [],
  };
  if (der === undefined) return out;
  const list = new DerReader(der);
  const exts: { id: number[]; critical: boolean; value: Buffer }[] = [];
  const seen = new Set<string>();
  while (!list.empty()) {
    const e = list.read(TAG.SEQUENCE);
    if (!e) throw fail('malformed extension');
    const r = new DerReader(e.content);
    const id = r.readOid();
    if (!id) throw fail('malformed extension OID field');
    let critical = false;
    if (r.peekTag() === TAG.BOOLEAN) {
      const b = r.readBoolean();
      if (b === undefined) throw fail('malformed extension critical field');
      critical = b;
    }
    const val = r.read(TAG.OCTET_STRING);
    if (!val) throw fail('malformed extension value field');
    const key = oidKey(id);
    if (seen.has(key)) throw new BuiltinError(opts.duplicateMessage ?? `x509: certificate contains duplicate extension with OID "${key}"`);
    seen.add(key);
    exts.push({ id, critical, value: val.content });
  }
  f.Extensions = exts.map((e) => ({ Id: e.id, Critical: e.critical, Value: e.value.toString('base64') }));
  const unhandled: number[][] = [];
  for (const e of exts) {
    const key = oidKey(e.id);
    let isUnhandled = false;
    if (opts.sanOnly) {
      // x509.CertificateRequest reads only the subject alternative names of its extensions
      if (key === '2.5.29.17') subjectAltNames(e.value, f, out);
      continue;
    }
    if (e.id.length === 4 && key.startsWith('2.5.29.')) {
      const arc = e.id[3];
      if (arc === 15) {
        const bits = new DerReader(e.value).readBitString();
        if (!bits) throw fail('invalid key usage');
        let usage = 0;
        for (let i = 0; i < 9; i++) if (bitAt(bits, i)) usage |= 1 << i;
        f.KeyUsage = out.keyUsage = usage;
      } else if (arc === 19) basicConstraints(e.value, f, out);
      else if (arc === 17) {
        isUnhandled = subjectAltNames(e.value, f, out);
        out.sanValue = e.value;
      } else if (arc === 30) isUnhandled = nameConstraints(e.value, e.critical, f, out);
      else if (arc === 31) crlDistributionPoints(e.value, f);
      else if (arc === 35) {
        if (e.critical) throw fail('authority key identifier incorrectly marked critical');
        const seq = new DerReader(e.value).read(TAG.SEQUENCE);
        if (!seq) throw fail('invalid authority key identifier');
        const r = new DerReader(seq.content);
        if (r.peekTag() === ctx(0)) {
          const kid = r.read(ctx(0));
          if (!kid) throw fail('invalid authority key identifier');
          f.AuthorityKeyId = kid.content.toString('base64');
        }
      } else if (arc === 36) policyConstraints(e.value, f, out);
      else if (arc === 37) extKeyUsage(e.value, f, out);
      else if (arc === 14) {
        if (e.critical) throw fail('subject key identifier incorrectly marked critical');
        const skid = new DerReader(e.value).read(TAG.OCTET_STRING);
        if (!skid) throw fail('invalid subject key identifier');
        f.SubjectKeyId = skid.content.toString('base64');
      } else if (arc === 32) certificatePolicies(e.value, f);
      else if (arc === 33) policyMappings(e.value, f);
      else if (arc === 54) {
        const n = new DerReader(e.value).readInteger();
        if (n === undefined || n > 0x7fffffffffffffffn || n < -0x8000000000000000n) throw fail('invalid inhibit any policy extension');
        f.InhibitAnyPolicy = Number(n);
        f.InhibitAnyPolicyZero = n === 0n;
      } else isUnhandled = true;
    } else if (key === '1.3.6.1.5.5.7.1.1') authorityInfoAccess(e.value, e.critical, f);
    else isUnhandled = true;
    if (e.critical && isUnhandled) unhandled.push(e.id);
  }
  f.UnhandledCriticalExtensions = nullIfEmpty(unhandled);
  out.unhandledCritical = unhandled.length;
  return out;
}

function basicConstraints(v: Buffer, f: { [key: string]: Value }, out: ParsedExtensions): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid basic constraints');
  const r = new DerReader(seq.content);
  let isCA = false;
  if (r.peekTag() === TAG.BOOLEAN) {
    const b = r.readBoolean();
    if (b === undefined) throw fail('invalid basic constraints');
    isCA = b;
  }
  let maxPathLen = -1;
  if (r.peekTag() === TAG.INTEGER) {
    const n = r.readInteger();
    if (n === undefined || n < 0n || n > 0x7fffffffffffffffn) throw fail('invalid basic constraints');
    maxPathLen = Number(n);
  }
  Object.assign(f, { IsCA: isCA, MaxPathLen: maxPathLen, BasicConstraintsValid: true, MaxPathLenZero: maxPathLen === 0 });
  Object.assign(out, { isCA, maxPathLen, basicConstraintsValid: true });
}

/** Returns true when the extension named nothing crypto/x509 reads (then it counts as unhandled if critical). */
function crlDistributionPoints(v: Buffer, f: { [key: string]: Value }): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid CRL distribution points');
  const r = new DerReader(seq.content);
  const urls: string[] = [];
  while (!r.empty()) {
    const dp = r.read(TAG.SEQUENCE);
    if (!dp) throw fail('invalid CRL distribution point');
    const name = new DerReader(dp.content).readOptional(ctx(0, true));
    if (name === undefined) throw fail('invalid CRL distribution point');
    if (!name) continue;
    const full = new DerReader(name.content).read(ctx(0, true));
    if (!full) throw fail('invalid CRL distribution point');
    const fr = new DerReader(full.content);
    while (!fr.empty() && fr.peekTag() === ctx(6)) {
      const uri = fr.read(ctx(6));
      if (!uri) throw fail('invalid CRL distribution point');
      urls.push(uri.content.toString('utf8'));
    }
  }
  if (urls.length > 0) f.CRLDistributionPoints = [...((f.CRLDistributionPoints as string[] | null) ?? []), ...urls];
}

function policyConstraints(v: Buffer, f: { [key: string]: Value }, out: ParsedExtensions): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid policy constraints extension');
  const r = new DerReader(seq.content);
  if (r.peekTag() === ctx(0)) {
    const n = r.readInteger(ctx(0));
    if (n === undefined) throw fail('invalid policy constraints extension');
    f.RequireExplicitPolicy = Number(n);
    f.RequireExplicitPolicyZero = n === 0n;
    out.hasRequireExplicitPolicy = true;
  }
  if (r.peekTag() === ctx(1)) {
    const n = r.readInteger(ctx(1));
    if (n === undefined) throw fail('invalid policy constraints extension');
    f.InhibitPolicyMapping = Number(n);
    f.InhibitPolicyMappingZero = n === 0n;
  }
}

function extKeyUsage(v: Buffer, f: { [key: string]: Value }, out: ParsedExtensions): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid extended key usages');
  const r = new DerReader(seq.content);
  const known: number[] = [];
  const unknown: number[][] = [];
  while (!r.empty()) {
    const oid = r.readOid();
    if (!oid) throw fail('invalid extended key usages');
    const i = EKU_OIDS.indexOf(oidKey(oid));
    if (i >= 0) known.push(i);
    else unknown.push(oid);
  }
  f.ExtKeyUsage = nullIfEmpty(known);
  f.UnknownExtKeyUsage = nullIfEmpty(unknown);
  out.extKeyUsage = known;
  out.unknownExtKeyUsage = unknown.length;
}

function certificatePolicies(v: Buffer, f: { [key: string]: Value }): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid certificate policies');
  const r = new DerReader(seq.content);
  const policies: string[] = [];
  const identifiers: number[][] = [];
  const seen = new Set<string>();
  while (!r.empty()) {
    const cp = r.read(TAG.SEQUENCE);
    const oid = cp && new DerReader(cp.content).read(TAG.OID);
    if (!oid) throw fail('invalid certificate policies');
    const hex = oid.content.toString('hex');
    const dotted = derOidString(oid.content);
    if (seen.has(hex) || dotted === undefined) throw fail('invalid certificate policies');
    seen.add(hex);
    policies.push(dotted);
    const arcs = dotted.split('.').map(BigInt);
    if (arcs.every((a) => a <= 0x7fffffffffffffffn)) identifiers.push(arcs.map(Number));
  }
  f.Policies = nullIfEmpty(policies);
  f.PolicyIdentifiers = identifiers;
}

function policyMappings(v: Buffer, f: { [key: string]: Value }): void {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid policy mappings extension');
  const r = new DerReader(seq.content);
  const maps: Value[] = [];
  while (!r.empty()) {
    const s = r.read(TAG.SEQUENCE);
    const sr = s && new DerReader(s.content);
    const issuer = sr?.read(TAG.OID);
    const subject = sr?.read(TAG.OID);
    if (!issuer || !subject) throw fail('invalid policy mappings extension');
    maps.push({ IssuerDomainPolicy: derOidString(issuer.content) ?? '', SubjectDomainPolicy: derOidString(subject.content) ?? '' });
  }
  f.PolicyMappings = nullIfEmpty(maps);
}

function authorityInfoAccess(v: Buffer, critical: boolean, f: { [key: string]: Value }): void {
  if (critical) throw fail('authority info access incorrectly marked critical');
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid authority info access');
  const r = new DerReader(seq.content);
  const ocsp: string[] = [];
  const issuers: string[] = [];
  while (!r.empty()) {
    const aia = r.read(TAG.SEQUENCE);
    if (!aia) throw fail('invalid authority info access');
    const ar = new DerReader(aia.content);
    const method = ar.readOid();
    if (!method) throw fail('invalid authority info access');
    if (ar.peekTag() !== ctx(6)) continue;
    const loc = ar.read(ctx(6));
    if (!loc) throw fail('invalid authority info access');
    const m = oidKey(method);
    if (m === '1.3.6.1.5.5.7.48.1') ocsp.push(loc.content.toString('utf8'));
    else if (m === '1.3.6.1.5.5.7.48.2') issuers.push(loc.content.toString('utf8'));
  }
  f.OCSPServer = nullIfEmpty(ocsp);
  f.IssuingCertificateURL = nullIfEmpty(issuers);
}
