import { NotImplementedError } from './builtin.js';
import { isIP } from 'node:net';
import { domainNameValid } from './x509-general-names.js';

/**
 * Go's checkChainConstraints (crypto/x509/constraints.go): the name constraints of each CA in a chain apply
 * to the subject alternative names of every certificate below it. DNS names and URI hosts match a constraint
 * by label suffix (".example.com" only subdomains), an excluded constraint also catches a wildcard whose
 * parent it names, IP addresses by network, email addresses by mailbox or domain. Go sorts and prunes the
 * constraints to search them faster; "any constraint matches" is the same answer.
 */

export interface IpNet {
  ip: Buffer;
  mask: Buffer;
}

export interface NameConstraints {
  permittedDNS: string[];
  excludedDNS: string[];
  permittedIP: IpNet[];
  excludedIP: IpNet[];
  permittedEmail: string[];
  excludedEmail: string[];
  permittedURI: string[];
  excludedURI: string[];
}

/** What a certificate of the chain holds for the check. */
export interface ChainMember {
  constraints: NameConstraints | undefined;
  hasSan: boolean;
  dnsNames: string[];
  ipAddresses: Buffer[];
  emails: string[];
  uriHosts: string[];
}

/** undefined when the chain satisfies every constraint; otherwise Go's reason. */
export function chainConstraintsError(chain: ChainMember[]): string | undefined {
  const withConstraints = chain.map((c, i) => ({ c: c.constraints, i })).filter((x): x is { c: NameConstraints; i: number } => x.c !== undefined);
  if (withConstraints.length === 0) return undefined;
  for (const [i, cert] of chain.entries()) {
    if (!cert.hasSan) continue;
    const above = withConstraints.filter((x) => x.i > i);
    if (above.length === 0) return undefined; // Go stops at the last constraint
    for (const { c } of above) {
      const err = check(c, cert);
      if (err) return err;
    }
  }
  return undefined;
}

function check(c: NameConstraints, cert: ChainMember): string | undefined {
  for (const ip of cert.ipAddresses) {
    const e = checkOne('IP address', ipString(ip), c.permittedIP, c.excludedIP, (n) => ipNetContains(n, ip), (n) => ipNetContains(n, ip));
    if (e) return e;
  }
  for (const d of cert.dnsNames) {
    if (!domainNameValid(d, false)) return `x509: cannot parse dnsName "${d}"`;
    const e = checkOne('DNS name', d, c.permittedDNS, c.excludedDNS, (k) => dnsMatch(k, d), (k) => dnsMatch(k, d) || wildcardParent(k, d));
    if (e) return e;
  }
  for (const host of cert.uriHosts) {
    const domain = uriDomain(host);
    if (domain instanceof Error) return domain.message;
    if (!domainNameValid(domain, false)) return `x509: internal error: URI SAN failed to parse`;
    const e = checkOne('URI', domain, c.permittedURI, c.excludedURI, (k) => dnsMatch(k, domain), (k) => dnsMatch(k, domain) || wildcardParent(k, domain));
    if (e) return e;
  }
  for (const email of cert.emails) {
    const m = mailbox(email);
    if (!domainNameValid(m.domain, false)) return `x509: cannot parse rfc822Name "${email}"`;
    const matches = (k: string, excluded: boolean): boolean => {
      if (k.includes('@')) {
        const km = mailbox(k);
        return km.local === m.local && km.domain === m.domain;
      }
      return dnsMatch(k, m.domain) || (excluded && wildcardParent(k, m.domain));
    };
    const e = checkOne('email address', email, c.permittedEmail, c.excludedEmail, (k) => matches(k, false), (k) => matches(k, true));
    if (e) return e;
  }
  return undefined;
}

function checkOne<T>(kind: string, name: string, permitted: T[], excluded: T[], inPermitted: (c: T) => boolean, inExcluded: (c: T) => boolean): string | undefined {
  if (permitted.length > 0 && !permitted.some(inPermitted)) return `${kind} "${name}" is not permitted by any constraint`;
  if (excluded.some(inExcluded)) return `${kind} "${name}" is excluded by constraint`;
  return undefined;
}

/** dnsHasSuffix(constraint, name); an empty constraint matches everything. */
function dnsMatch(constraint: string, name: string): boolean {
  if (constraint === '') return true;
  const a = constraint.toLowerCase();
  const b = name.toLowerCase();
  if (a.length > b.length || !b.endsWith(a)) return false;
  return !(a[0] !== '.' && b.length > a.length && b[b.length - a.length - 1] !== '.');
}

/** An excluded constraint also excludes a wildcard name whose parent domain is the constraint's parent. */
function wildcardParent(constraint: string, name: string): boolean {
  if (!name.startsWith('*')) return false;
  const parent = (s: string): string => {
    const dot = s.indexOf('.');
    return dot < 0 ? '' : s.slice(dot);
  };
  const p = parent(constraint.toLowerCase());
  return p !== '' && parent(name.toLowerCase()) === p;
}

/** Go's parseURIs: the host without its port; a URI with no host or an IP host cannot be matched (the chain fails). */
function uriDomain(host: string): string | Error {
  let h = host.toLowerCase();
  if (h === '') return new Error('URI with empty host cannot be matched against constraints');
  if (h.includes(':') && !h.endsWith(']')) h = h.slice(0, h.lastIndexOf(':'));
  if (isIP(h) || (h.startsWith('[') && h.endsWith(']'))) return new Error('URI with IP cannot be matched against constraints');
  return h;
}

/** The simple form of an RFC 2821 mailbox (dot-atom local part); anything else is not reproduced. */
function mailbox(s: string): { local: string; domain: string } {
  const m = /^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([^@]*)$/.exec(s);
  if (!m) throw new NotImplementedError(`x509 name constraints: the email address ${JSON.stringify(s)} (quoted or unusual local parts are not parsed as Go does)`);
  return { local: m[1] as string, domain: (m[2] as string).toLowerCase() };
}

const V4_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function to4(ip: Buffer): Buffer | undefined {
  if (ip.length === 4) return ip;
  if (ip.length === 16 && ip.subarray(0, 12).equals(V4_PREFIX)) return ip.subarray(12);
  return undefined;
}

/** net.IPNet.Contains, with the constraint chosen by the address's length as Go's ipConstraints does. */
function ipNetContains(n: IpNet, target: Buffer): boolean {
  if ((n.ip.length === 4) !== (target.length === 4)) return false; // Go keeps IPv4 and IPv6 constraints apart
  let nn = to4(n.ip) ?? n.ip;
  let m = n.mask;
  if (m.length === 4 && nn.length !== 4) return false;
  if (m.length === 16 && nn.length === 4) m = m.subarray(12);
  if (nn.length !== m.length) nn = n.ip;
  const ip = to4(target) ?? target;
  if (ip.length !== nn.length || ip.length !== m.length) return false;
  for (let i = 0; i < ip.length; i++) if (((nn[i] as number) & (m[i] as number)) !== ((ip[i] as number) & (m[i] as number))) return false;
  return true;
}

function ipString(ip: Buffer): string {
  return ip.length === 4 ? [...ip].join('.') : ip.toString('hex');
}
