import { isIPv4, isIPv6 } from 'node:net';
import { BuiltinError, stringArg, type BuiltinTable } from './builtin.js';
import { RegoSet, type Value } from './json-values.js';

/** net.* that OPA's wasm target leaves to the host, after OPA's topdown/cidr.go (addresses as 128-bit integers). */

interface Net {
  /** The address as written (Go keeps it unmasked for a plain IPv4 given to cidr_merge). */
  ip: bigint;
  prefix: number;
  v4: boolean;
}

const V4_MAPPED = 0xffffn << 32n;
/** Expanding more addresses than this would hold the evaluation (and the server) for seconds. */
export const MAX_EXPANDED_ADDRESSES = 65_536;

function parseIp(s: string): { ip: bigint; v4: boolean } | undefined {
  if (isIPv4(s)) {
    const parts = s.split('.').map(Number);
    return { ip: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), v4: true };
  }
  if (s.includes('%') || !isIPv6(s)) return undefined;
  let text = s;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: bigint | undefined;
  if (v4Tail) {
    tail = parseIp(v4Tail[1] as string)?.ip;
    text = `${text.slice(0, v4Tail.index)}0:0`;
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  let ip = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tail !== undefined) ip = (ip & ~0xffffffffn) | tail;
  // Go treats an IPv4-mapped IPv6 address as IPv4
  if (ip >> 32n === 0xffffn) return { ip: ip & 0xffffffffn, v4: true };
  return { ip, v4: false };
}

function parseCidr(s: string): Net {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? undefined : parseIp(s.slice(0, slash));
  const prefixText = slash < 0 ? '' : s.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!addr || !(prefix <= (addr.v4 && !s.slice(0, slash).includes(':') ? 32 : 128))) throw new BuiltinError(`invalid CIDR address: ${s}`);
  const v4 = addr.v4 && !s.slice(0, slash).includes(':');
  const bits = v4 ? 32 : 128;
  const ip = v4 || !addr.v4 ? addr.ip : addr.ip | V4_MAPPED;
  return { ip: mask(ip, prefix, bits), prefix, v4 };
}

function mask(ip: bigint, prefix: number, bits: number): bigint {
  const host = BigInt(bits - prefix);
  return (ip >> host) << host;
}

export function formatIp(ip: bigint, v4: boolean): string {
  if (v4) return [24n, 16n, 8n, 0n].map((sh) => String((ip >> sh) & 0xffn)).join('.');
  if (ip >> 32n === 0xffffn) return formatIp(ip & 0xffffffffn, true);
  const groups = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip >> BigInt(i * 16)) & 0xffffn));
  return ipv6Text(groups);
}

/** Eight 16-bit groups as text, RFC 5952 (as Go writes them): the longest run (>= 2) of zero groups is "::". */
export function ipv6Text(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function expand(s: string): RegoSet {
  const n = parseCidr(s);
  const bits = n.v4 ? 32 : 128;
  const count = 1n << BigInt(bits - n.prefix);
  if (count > BigInt(MAX_EXPANDED_ADDRESSES)) {
    throw new BuiltinError(`net.cidr_expand: ${s} has ${count} addresses, more than the embedded engine expands (${MAX_EXPANDED_ADDRESSES})`);
  }
  const out: Value[] = [];
  for (let i = 0n; i < count; i++) out.push(formatIp(n.ip + i, n.v4));
  return new RegoSet(out);
}

interface Range {
  first: bigint;
  last: bigint;
  /** The network as Go prints it, while the range is one input network unmerged. */
  text: string | undefined;
}

/** A network for cidr_merge: a CIDR, or a plain IPv4 address with its classful default mask, unmasked. */
function mergeInput(v: Value): Range {
  if (typeof v !== 'string') throw new BuiltinError('element must be string');
  const ip = parseIp(v);
  let n: Net;
  let text: string;
  if (ip) {
    if (!ip.v4 || v.includes(':')) throw new BuiltinError('IPv6 invalid: needs prefix length');
    const first = Number(ip.ip >> 24n);
    const prefix = first < 0x80 ? 8 : first < 0xc0 ? 16 : 24;
    n = { ip: ip.ip, prefix, v4: true };
    text = `${v}/${prefix}`;
  } else {
    n = parseCidr(v);
    text = `${formatIp(n.ip, n.v4 && !(n.ip >> 32n))}/${n.prefix}`;
  }
  const bits = n.v4 ? 32 : 128;
  const base = n.v4 ? V4_MAPPED | mask(n.ip, n.prefix, 32) : mask(n.ip, n.prefix, 128);
  const size = (1n << BigInt(bits - n.prefix)) - 1n;
  return { first: base, last: base + size, text };
}

/** The smallest list of CIDRs covering [first, last]. */
function rangeToCidrs(first: bigint, last: bigint): string[] {
  const v4 = first >> 32n === 0xffffn;
  const bits = v4 ? 32 : 128;
  const offset = v4 ? V4_MAPPED : 0n;
  let a = first - offset;
  const b = last - offset;
  const out: string[] = [];
  while (a <= b) {
    let size = 0;
    while (size < bits && a % (1n << BigInt(size + 1)) === 0n && a + (1n << BigInt(size + 1)) - 1n <= b) size++;
    out.push(`${formatIp(a, v4)}/${bits - size}`);
    a += 1n << BigInt(size);
  }
  return out;
}

function merge(v: Value | undefined): RegoSet {
  const items = v instanceof RegoSet ? v.items : Array.isArray(v) ? v : undefined;
  if (!items) throw new BuiltinError('operand must be an array');
  const ranges = items.map(mergeInput).sort((x, y) => (x.last === y.last ? cmp(x.first, y.first) : cmp(x.last, y.last)));
  for (let i = ranges.length - 1; i > 0; i--) {
    const cur = ranges[i] as Range;
    const prev = ranges[i - 1] as Range;
    const before = cur.first === 0n || cur.first === V4_MAPPED ? cur.first : cur.first - 1n;
    if (before <= prev.last) {
      ranges[i - 1] = { first: prev.first < cur.first ? prev.first : cur.first, last: cur.last, text: undefined };
      ranges.splice(i, 1);
    }
  }
  const out = new Set<string>();
  for (const r of ranges) {
    if (r.text !== undefined) out.add(r.text);
    else for (const c of rangeToCidrs(r.first, r.last)) out.add(c);
  }
  return new RegoSet([...out]);
}

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

function contains(cidr: string, what: string): boolean {
  const a = parseCidr(cidr);
  const aBits = a.v4 ? 32 : 128;
  const inA = (ip: bigint, v4: boolean): boolean => {
    if (v4 !== a.v4) {
      // Go's IPNet.Contains compares an IPv4 address against an IPv6 network only in its mapped form
      if (a.v4 || !v4) return false;
      return mask(V4_MAPPED | ip, a.prefix, 128) === a.ip;
    }
    return mask(ip, a.prefix, aBits) === a.ip;
  };
  const ip = parseIp(what);
  if (ip) return inA(ip.ip, ip.v4);
  let b: Net;
  try {
    b = parseCidr(what);
  } catch {
    throw new BuiltinError(`not a valid textual representation of an IP address or CIDR: ${what}`);
  }
  const last = b.ip | ((1n << BigInt((b.v4 ? 32 : 128) - b.prefix)) - 1n);
  return inA(b.ip, b.v4) && inA(last, b.v4);
}

/** net.cidr_contains_matches: [index-or-key of operand 1, index-or-key of operand 2] for every containment. */
function containsMatches(x: Value | undefined, y: Value | undefined): RegoSet {
  const entries = (v: Value | undefined, pos: number): [string, Value][] => {
    const cidrOf = (e: Value): string => {
      if (typeof e === 'string') return e;
      if (Array.isArray(e) && e.length > 0 && typeof e[0] === 'string') return e[0];
      throw new BuiltinError(`operand ${pos}: element must be string or non-empty array`);
    };
    if (typeof v === 'string') return [[v, v]];
    if (v instanceof RegoSet) return v.items.map((e) => [cidrOf(e), e]);
    if (Array.isArray(v)) return v.map((e, i) => [cidrOf(e), i]);
    if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, e]) => [cidrOf(e as Value), k]);
    return [];
  };
  const out: Value[] = [];
  const seen = new Set<string>();
  for (const [c1, i1] of entries(x, 1)) {
    for (const [c2, i2] of entries(y, 2)) {
      if (contains(c1, c2)) {
        const key = JSON.stringify([i1, i2]);
        if (!seen.has(key)) out.push([i1, i2]);
        seen.add(key);
      }
    }
  }
  return new RegoSet(out);
}

export const netBuiltins: BuiltinTable = {
  'net.cidr_expand': (a) => expand(stringArg(a, 0)),
  'net.cidr_is_valid': (a) => {
    if (typeof a[0] !== 'string') return false;
    try {
      parseCidr(a[0]);
      return true;
    } catch {
      return false;
    }
  },
  'net.cidr_merge': (a) => merge(a[0]),
  'net.cidr_contains_matches': (a) => containsMatches(a[0], a[1]),
};

/** Builtins whose arguments must keep the difference between a set and an array. */
export const SET_AWARE = new Set(['net.cidr_merge', 'net.cidr_contains_matches']);
