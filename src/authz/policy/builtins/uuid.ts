import { randomInt, randomUUID } from 'node:crypto';
import { BuiltinError, intArg, stringArg, type BuiltinTable } from './builtin.js';
import type { Value } from './json-values.js';

/** uuid.* and rand.intn; like OPA, the same arguments give the same value within one evaluation. */

const UUID_HEX = /^[0-9a-fA-F]{32}$/;
const GREGORIAN_TO_UNIX_100NS = 122_192_928_000_000_000n;

/** google/uuid's Parse: canonical, {braced}, urn:uuid: or 32 hex digits. */
function uuidBytes(s: string): Buffer | undefined {
  let t = s;
  if (t.length === 45) {
    if (!t.toLowerCase().startsWith('urn:uuid:')) return undefined;
    t = t.slice(9);
  } else if (t.length === 38) {
    if (t[0] !== '{' || t[37] !== '}') return undefined;
    t = t.slice(1, 37);
  } else if (t.length === 32) {
    return UUID_HEX.test(t) ? Buffer.from(t, 'hex') : undefined;
  }
  if (t.length !== 36 || t[8] !== '-' || t[13] !== '-' || t[18] !== '-' || t[23] !== '-') return undefined;
  const hex = t.replaceAll('-', '');
  return UUID_HEX.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

function variant(b: Buffer): string {
  const v = b[8] as number;
  if ((v & 0xc0) === 0x80) return 'RFC4122';
  if ((v & 0xe0) === 0xc0) return 'Microsoft';
  if ((v & 0xe0) === 0xe0) return 'Future';
  return 'Reserved';
}

function macVars(first: number): string {
  if ((first & 0b11) === 0b11) return 'local:multicast';
  if ((first & 0b01) === 0b01) return 'global:multicast';
  if ((first & 0b10) === 0b10) return 'local:unicast';
  return 'global:unicast';
}

function parseUuid(s: string): Value | undefined {
  const b = uuidBytes(s);
  if (!b) return undefined;
  const version = (b[6] as number) >> 4;
  const out: { [k: string]: Value } = { version, variant: variant(b) };
  if (version === 1 || version === 2) {
    const timeLow = BigInt(b.readUInt32BE(0));
    const timeMid = BigInt(b.readUInt16BE(4));
    const timeHi = BigInt(b.readUInt16BE(6) & 0x0fff);
    const t = (timeHi << 48n) | (timeMid << 32n) | timeLow;
    const since = t - GREGORIAN_TO_UNIX_100NS;
    // UnixTime(): seconds and nanoseconds, each from the 100 ns count (truncating division)
    out.time = (since / 10_000_000n) * 1_000_000_000n + (since % 10_000_000n) * 100n;
    out.nodeid = [...b.subarray(10, 16)].map((x) => x.toString(16).padStart(2, '0')).join('-');
    out.macvariables = macVars(b[10] as number);
    out.clocksequence = b.readUInt16BE(8) & 0x3fff;
    if (version === 2) {
      out.id = b.readUInt32BE(0);
      const domain = b[9] as number;
      out.domain = ['Person', 'Group', 'Org'][domain] ?? `Domain${domain}`;
    }
  }
  return out;
}

export const uuidBuiltins: BuiltinTable = {
  'uuid.rfc4122': (a, ctx) => {
    const key = `uuid.rfc4122:${JSON.stringify(a[0])}`;
    let v = ctx.memo.get(key);
    if (v === undefined) {
      v = randomUUID();
      ctx.memo.set(key, v);
    }
    return v;
  },
  'uuid.parse': (a) => parseUuid(stringArg(a, 0)),
  'rand.intn': (a, ctx) => {
    const str = stringArg(a, 0);
    const n = intArg(a, 1);
    if (n === 0) return 0;
    const key = `rand.intn:${JSON.stringify([str, n])}`;
    let v = ctx.memo.get(key);
    if (v === undefined) {
      if (Math.abs(n) > 2 ** 48 - 1) throw new BuiltinError('rand.intn: n too large');
      v = randomInt(Math.abs(n));
      ctx.memo.set(key, v);
    }
    return v;
  },
};
