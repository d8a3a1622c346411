import { isIP } from 'node:net';
import { BuiltinError } from './builtin.js';
import { DerReader, TAG, ctx } from './der.js';
import { goUrlString, goUrlValue, parseGoUrl } from './go-url.js';
import type { Value } from './json-values.js';
import type { IpNet } from './x509-constraints.js';
import type { ParsedExtensions } from './x509-extensions.js';
import { goIpString, ia5 } from './x509-name.js';

/** GeneralNames in certificates: the subject alternative names and the name constraints extensions. */

const fail = (msg: string): BuiltinError => new BuiltinError(`x509: ${msg}`);
const nullIfEmpty = <T extends Value>(xs: T[]): T[] | null => (xs.length > 0 ? xs : null);

export function subjectAltNames(v: Buffer, f: { [key: string]: Value }, out: ParsedExtensions): boolean {
  const seq = new DerReader(v).read(TAG.SEQUENCE);
  if (!seq) throw fail('invalid subject alternative names');
  const r = new DerReader(seq.content);
  const dns: string[] = [];
  const emails: string[] = [];
  const ips: Buffer[] = [];
  const uris: Value[] = [];
  const uriStrings: string[] = [];
  while (!r.empty()) {
    const san = r.readAny();
    if (!san) throw fail('invalid subject alternative name');
    const tag = san.tag ^ 0x80;
    if (tag === 1) {
      const s = ia5(san.content);
      if (s === undefined) throw fail('SAN rfc822Name is malformed');
      emails.push(s);
    } else if (tag === 2) {
      const s = ia5(san.content);
      if (s === undefined) throw fail('SAN dNSName is malformed');
      dns.push(s);
    } else if (tag === 6) {
      const s = ia5(san.content);
      if (s === undefined) throw fail('SAN uniformResourceIdentifier is malformed');
      let u;
      try {
        u = parseGoUrl(s);
      } catch (err) {
        throw fail(`cannot parse URI ${JSON.stringify(s)}: ${(err as Error).message}`);
      }
      if (u.Host.length > 0 && !domainNameValid(u.Host, false)) throw fail(`cannot parse URI ${JSON.stringify(s)}: invalid domain`);
      uris.push(goUrlValue(u));
      uriStrings.push(goUrlString(u));
    } else if (tag === 7) {
      if (san.content.length !== 4 && san.content.length !== 16) throw fail(`cannot parse IP address of length ${san.content.length}`);
      ips.push(san.content);
    }
  }
  Object.assign(f, {
    DNSNames: nullIfEmpty(dns), EmailAddresses: nullIfEmpty(emails), IPAddresses: nullIfEmpty(ips.map(goIpString)), URIs: nullIfEmpty(uris),
  });
  out.uriStrings = uriStrings;
  out.dnsNames = dns;
  out.ipAddresses = ips;
  out.emails = emails;
  out.uriHosts = uris.map((u) => (u as { Host: string }).Host);
  out.hasSan = true;
  return dns.length === 0 && emails.length === 0 && ips.length === 0 && uris.length === 0;
}

export function nameConstraints(v: Buffer, critical: boolean, f: { [key: string]: Value }, out: ParsedExtensions): boolean {
  const outer = new DerReader(v);
  const top = outer.read(TAG.SEQUENCE);
  if (!top || !outer.empty()) throw fail('invalid NameConstraints extension');
  const r = new DerReader(top.content);
  const permitted = r.readOptional(ctx(0, true));
  const excluded = r.readOptional(ctx(1, true));
  if (permitted === undefined || excluded === undefined || !r.empty()) throw fail('invalid NameConstraints extension');
  if ((!permitted && !excluded) || ((permitted?.content.length ?? 0) === 0 && (excluded?.content.length ?? 0) === 0)) throw fail('empty name constraints extension');
  let unhandled = false;
  const values = (subtrees: Buffer | undefined): [string[], IpNet[], string[], string[]] => {
    const dns: string[] = [];
    const ips: IpNet[] = [];
    const emails: string[] = [];
    const uris: string[] = [];
    const st = new DerReader(subtrees ?? Buffer.alloc(0));
    while (!st.empty()) {
      const seq = st.read(TAG.SEQUENCE);
      const value = seq && new DerReader(seq.content).readAny();
      if (!value) throw fail('invalid NameConstraints extension');
      const text = ia5(value.content);
      if (value.tag === ctx(2)) {
        if (text === undefined) throw fail('invalid constraint value: IA5String contains invalid character');
        if (!domainNameValid(text, true)) throw fail(`failed to parse dnsName constraint ${JSON.stringify(text)}`);
        dns.push(text);
      } else if (value.tag === ctx(7)) {
        const l = value.content.length;
        if (l !== 8 && l !== 32) throw fail(`IP constraint contained value of length ${l}`);
        const ip = value.content.subarray(0, l / 2);
        const mask = value.content.subarray(l / 2);
        if (!validMask(mask)) throw fail(`IP constraint contained invalid mask ${mask.toString('hex')}`);
        ips.push({ ip, mask });
      } else if (value.tag === ctx(1)) {
        if (text === undefined) throw fail('invalid constraint value: IA5String contains invalid character');
        if (!text.includes('@') && !domainNameValid(text, true)) throw fail(`failed to parse rfc822Name constraint ${JSON.stringify(text)}`);
        emails.push(text);
      } else if (value.tag === ctx(6)) {
        if (text === undefined) throw fail('invalid constraint value: IA5String contains invalid character');
        if (isIP(text)) throw fail(`failed to parse URI constraint ${JSON.stringify(text)}: cannot be IP address`);
        if (!domainNameValid(text, true)) throw fail(`failed to parse URI constraint ${JSON.stringify(text)}`);
        uris.push(text);
      } else unhandled = true;
    }
    return [dns, ips, emails, uris];
  };
  const [pd, pi, pe, pu] = values(permitted?.content);
  const [ed, ei, ee, eu] = values(excluded?.content);
  const ipNets = (xs: IpNet[]): Value[] | null => nullIfEmpty(xs.map((n) => ({ IP: goIpString(n.ip), Mask: n.mask.toString('base64') })));
  out.nameConstraints = {
    permittedDNS: pd, excludedDNS: ed, permittedIP: pi, excludedIP: ei, permittedEmail: pe, excludedEmail: ee, permittedURI: pu, excludedURI: eu,
  };
  Object.assign(f, {
    PermittedDNSDomains: nullIfEmpty(pd), PermittedIPRanges: ipNets(pi), PermittedEmailAddresses: nullIfEmpty(pe), PermittedURIDomains: nullIfEmpty(pu),
    ExcludedDNSDomains: nullIfEmpty(ed), ExcludedIPRanges: ipNets(ei), ExcludedEmailAddresses: nullIfEmpty(ee), ExcludedURIDomains: nullIfEmpty(eu),
    PermittedDNSDomainsCritical: critical,
  });
  return unhandled;
}

function validMask(mask: Buffer): boolean {
  let seenZero = false;
  for (const b of mask) {
    if (seenZero) {
      if (b !== 0) return false;
      continue;
    }
    if (b === 0xff) continue;
    if (![0x00, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc, 0xfe].includes(b)) return false;
    seenZero = true;
  }
  return true;
}

/** crypto/x509 domainNameValid (the checks Go 1.26 enforces). */
export function domainNameValid(s: string, constraint: boolean): boolean {
  if (s.length === 0) return true;
  if (s.endsWith('.')) return false;
  let t = s;
  if (constraint && t.startsWith('.')) t = t.slice(1);
  let lastDot = -1;
  for (let i = 0; i <= t.length; i++) {
    const c = i < t.length ? t.charCodeAt(i) : -1;
    if (i < t.length && (c < 33 || c > 126)) return false;
    if (i === t.length || c === 0x2e) {
      const labelLen = lastDot >= 0 ? i - (lastDot + 1) : i;
      if (labelLen === 0) return false;
      lastDot = i;
    }
  }
  return true;
}
