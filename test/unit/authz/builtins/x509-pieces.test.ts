import { describe, expect, it } from 'vitest';
import { DerReader, derInteger, derOid, derOidString } from '../../../../src/authz/policy/builtins/der.js';
import { goUrlString, goUrlValue, parseGoUrl } from '../../../../src/authz/policy/builtins/go-url.js';
import { base64Std, pemDecode } from '../../../../src/authz/policy/builtins/pem.js';
import { chainConstraintsError, type ChainMember, type NameConstraints } from '../../../../src/authz/policy/builtins/x509-constraints.js';
import { goIpString } from '../../../../src/authz/policy/builtins/x509-name.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex');

describe('DER as Go crypto/x509 reads it (cryptobyte rules)', () => {
  it('reads minimal INTEGERs, refuses padded ones', () => {
    expect(derInteger(hex('01'))).toBe(1n);
    expect(derInteger(hex('00 80'))).toBe(128n);
    expect(derInteger(hex('ff'))).toBe(-1n);
    expect(derInteger(hex('00 01'))).toBeUndefined();
    expect(derInteger(hex('ff 80'))).toBeUndefined();
    expect(derInteger(hex(''))).toBeUndefined();
  });

  it('reads OIDs; arcs of 2^31 and more only as x509.OID text', () => {
    expect(derOid(hex('2a 86 48 86 f7 0d 01 01 0b'))).toEqual([1, 2, 840, 113549, 1, 1, 11]);
    expect(derOid(hex('55 1d 11'))).toEqual([2, 5, 29, 17]);
    expect(derOid(hex('2a 88 80 80 80 00'))).toBeUndefined(); // 2^31
    expect(derOidString(hex('2a 88 80 80 80 00'))).toBe('1.2.2147483648');
    expect(derOid(hex('2a 80 01'))).toBeUndefined(); // not minimal
  });

  it('refuses non-minimal and indefinite lengths', () => {
    expect(new DerReader(hex('30 03 02 01 05')).read(0x30)?.content).toEqual(hex('02 01 05'));
    expect(new DerReader(hex('30 81 03 02 01 05')).read(0x30)).toBeUndefined();
    expect(new DerReader(hex('30 80 02 01 05 00 00')).read(0x30)).toBeUndefined();
    expect(new DerReader(hex('30 05 02 01')).read(0x30)).toBeUndefined();
  });
});

describe('net.IP.String and net/url as Go writes them', () => {
  it.each([
    ['c0000201', '192.0.2.1'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['00000000000000000000ffff01020304', '1.2.3.4'],
    ['00010000000000010000000000000001', '1:0:0:1::1'],
    ['00010000000000010000000000010001', '1::1:0:0:1:1'],
    ['20010db8000100020003000400050006', '2001:db8:1:2:3:4:5:6'],
  ])('%s -> %s (outputs checked against Go)', (h, want) => {
    expect(goIpString(hex(h))).toBe(want);
  });

  it('parses URIs into url.URL and writes them back', () => {
    const u = parseGoUrl('https://u:p@h.example:8443/p%20q?x=1#frag');
    expect(goUrlValue(u)).toEqual({
      Scheme: 'https', Opaque: '', User: {}, Host: 'h.example:8443', Path: '/p q', RawPath: '', OmitHost: false, ForceQuery: false, RawQuery: 'x=1', Fragment: 'frag', RawFragment: '',
    });
    expect(goUrlString(u)).toBe('https://u:p@h.example:8443/p%20q?x=1#frag');
    expect(goUrlString(parseGoUrl('spiffe://example.org/ns/a'))).toBe('spiffe://example.org/ns/a');
    expect(parseGoUrl('urn:uuid:1234').Opaque).toBe('uuid:1234');
    expect(() => parseGoUrl('http://x/%zz')).toThrow('invalid URL escape');
  });
});

describe('PEM and base64 as Go decodes them', () => {
  it('finds blocks after text, skips headers, keeps the rest', () => {
    const pem = Buffer.from('junk\n-----BEGIN X-----\nK: v\n\nAQID\n-----END X-----\nrest');
    const d = pemDecode(pem);
    expect(d?.block).toEqual({ type: 'X', bytes: hex('010203') });
    expect(d?.rest.toString()).toBe('rest');
    expect(pemDecode(Buffer.from('-----BEGIN X-----\nAQID\n-----END Y-----\n'))).toBeUndefined();
  });

  it('decodes standard base64 strictly, ignoring line breaks', () => {
    expect(base64Std('AQID\nBA==')).toEqual(hex('01020304'));
    expect(base64Std('AQIDBA')).toBeUndefined();
    expect(base64Std('AQ-_')).toBeUndefined();
  });
});

describe('chain name constraints (Go checkChainConstraints)', () => {
  const none: NameConstraints = { permittedDNS: [], excludedDNS: [], permittedIP: [], excludedIP: [], permittedEmail: [], excludedEmail: [], permittedURI: [], excludedURI: [] };
  const leaf = (over: Partial<ChainMember>): ChainMember => ({ constraints: undefined, hasSan: true, dnsNames: [], ipAddresses: [], emails: [], uriHosts: [], ...over });
  const ca = (c: Partial<NameConstraints>): ChainMember => ({ ...leaf({ hasSan: false }), constraints: { ...none, ...c } });

  it('permits by label suffix, ".x" only for subdomains', () => {
    expect(chainConstraintsError([leaf({ dnsNames: ['a.example.com'] }), ca({ permittedDNS: ['.example.com'] })])).toBeUndefined();
    expect(chainConstraintsError([leaf({ dnsNames: ['example.com'] }), ca({ permittedDNS: ['.example.com'] })])).toMatch('not permitted');
    expect(chainConstraintsError([leaf({ dnsNames: ['badexample.com'] }), ca({ permittedDNS: ['example.com'] })])).toMatch('not permitted');
    expect(chainConstraintsError([leaf({ dnsNames: ['A.Example.com'] }), ca({ permittedDNS: ['example.com'] })])).toBeUndefined();
  });

  it('excludes wildcards whose parent an excluded name shares, IP networks, mailboxes', () => {
    expect(chainConstraintsError([leaf({ dnsNames: ['*.example.com'] }), ca({ excludedDNS: ['bad.example.com'] })])).toMatch('excluded');
    expect(chainConstraintsError([leaf({ ipAddresses: [hex('0a010101')] }), ca({ excludedIP: [{ ip: hex('0a000000'), mask: hex('ff000000') }] })])).toMatch('excluded');
    expect(chainConstraintsError([leaf({ ipAddresses: [hex('0b010101')] }), ca({ excludedIP: [{ ip: hex('0a000000'), mask: hex('ff000000') }] })])).toBeUndefined();
    expect(chainConstraintsError([leaf({ emails: ['me@bad.com'] }), ca({ excludedEmail: ['bad.com'] })])).toMatch('excluded');
    expect(chainConstraintsError([leaf({ emails: ['me@good.com'] }), ca({ permittedEmail: ['you@good.com'] })])).toMatch('not permitted');
  });

  it('applies a CA constraint only to the certificates below it', () => {
    expect(chainConstraintsError([ca({ permittedDNS: ['.example.com'] }), leaf({ dnsNames: ['other.org'] })])).toBeUndefined();
  });
});
