import { BuiltinError } from './builtin.js';
import { ipv6Text } from './net.js';
import { DerReader, TAG } from './der.js';
import type { Value } from './json-values.js';

/** pkix.Name as Go's encoding/json writes it, from a DER Name (crypto/x509 parseName + FillFromRDNSequence). */
export function parseName(der: Buffer): Value {
  const outer = new DerReader(der).read(TAG.SEQUENCE);
  if (!outer) throw new BuiltinError('x509: invalid RDNSequence');
  const seq = new DerReader(outer.content);
  const atvs: { type: number[]; value: Value }[] = [];
  while (!seq.empty()) {
    const set = seq.read(TAG.SET);
    if (!set) throw new BuiltinError('x509: invalid RDNSequence');
    const r = new DerReader(set.content);
    while (!r.empty()) {
      const atv = r.read(TAG.SEQUENCE);
      if (!atv) throw new BuiltinError('x509: invalid RDNSequence: invalid attribute');
      const ar = new DerReader(atv.content);
      const type = ar.readOid();
      if (!type) throw new BuiltinError('x509: invalid RDNSequence: invalid attribute type');
      const raw = ar.readAny();
      if (!raw) throw new BuiltinError('x509: invalid RDNSequence: invalid attribute value');
      try {
        atvs.push({ type, value: asn1String(raw.tag, raw.content) });
      } catch (err) {
        throw new BuiltinError(`x509: invalid RDNSequence: invalid attribute value: ${(err as Error).message}`);
      }
    }
  }
  return fillName(atvs);
}

const NAME_LISTS: Record<number, string> = {
  6: 'Country', 7: 'Locality', 8: 'Province', 9: 'StreetAddress', 10: 'Organization', 11: 'OrganizationalUnit', 17: 'PostalCode',
};

/** pkix.Name.FillFromRDNSequence: every attribute in Names; the string ones of 2.5.4.x in their fields. */
export function fillName(atvs: { type: number[]; value: Value }[]): Value {
  const name: { [key: string]: Value } = {
    Country: null, Organization: null, OrganizationalUnit: null, Locality: null, Province: null, StreetAddress: null, PostalCode: null,
    SerialNumber: '', CommonName: '',
  };
  for (const { type, value } of atvs) {
    if (typeof value !== 'string' || type.length !== 4 || type[0] !== 2 || type[1] !== 5 || type[2] !== 4) continue;
    const arc = type[3] as number;
    if (arc === 3) name.CommonName = value;
    else if (arc === 5) name.SerialNumber = value;
    else if (NAME_LISTS[arc]) {
      const key = NAME_LISTS[arc] as string;
      name[key] = [...((name[key] as string[] | null) ?? []), value];
    }
  }
  return { ...name, Names: atvs.length > 0 ? atvs.map((a) => ({ Type: a.type, Value: a.value })) : null, ExtraNames: null };
}

/** crypto/x509 parseASN1String: the string types a Name may hold; any other is an error. */
export function asn1String(tag: number, v: Buffer): string {
  switch (tag) {
    case TAG.T61String:
      return v.toString('latin1');
    case TAG.PrintableString:
      for (const b of v) if (!isPrintable(b)) throw new Error('invalid PrintableString');
      return v.toString('latin1');
    case TAG.UTF8String: {
      const s = new TextDecoder('utf-8', { fatal: true });
      try {
        return s.decode(v);
      } catch {
        throw new Error('invalid UTF-8 string');
      }
    }
    case TAG.BMPString: {
      if (v.length % 2 !== 0) throw new Error('invalid BMPString');
      let units = v;
      if (units.length >= 2 && units[units.length - 1] === 0 && units[units.length - 2] === 0) units = units.subarray(0, units.length - 2);
      const out: number[] = [];
      for (let i = 0; i < units.length; i += 2) {
        const p = ((units[i] as number) << 8) | (units[i + 1] as number);
        if (p === 0xfffe || p === 0xffff || (p >= 0xfdd0 && p <= 0xfdef) || (p >= 0xd800 && p <= 0xdfff)) throw new Error('invalid BMPString');
        out.push(p);
      }
      return String.fromCharCode(...out);
    }
    case TAG.IA5String:
      for (const b of v) if (b > 0x7f) throw new Error('invalid IA5String');
      return v.toString('latin1');
    case TAG.NumericString:
      for (const b of v) if (!((b >= 0x30 && b <= 0x39) || b === 0x20)) throw new Error('invalid NumericString');
      return v.toString('latin1');
    default:
      throw new Error(`unsupported string type: ${tag}`);
  }
}

function isPrintable(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || (b >= 0x27 && b <= 0x29) ||
    b === 0x20 || (b >= 0x2b && b <= 0x2f) || b === 0x3a || b === 0x3d || b === 0x3f ||
    b === 0x2a || b === 0x26 // Go's isPrintable accepts '*' and '&' (seen in the wild)
  );
}

/** IA5 (7-bit) text, as crypto/x509 isIA5String. */
export function ia5(v: Buffer): string | undefined {
  for (const b of v) if (b > 0x7f) return undefined;
  return v.toString('latin1');
}

/** net.IP.String(): dotted IPv4 (also for an IPv4-mapped IPv6), RFC 5952 IPv6, "?" + hex otherwise. */
export function goIpString(ip: Buffer): string {
  if (ip.length === 0) return '<nil>';
  if (ip.length === 4) return [...ip].join('.');
  if (ip.length !== 16) return `?${ip.toString('hex')}`;
  if (ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff) return [...ip.subarray(12)].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] as number) << 8) | (ip[i + 1] as number));
  return ipv6Text(groups);
}
