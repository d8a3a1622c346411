import { BuiltinError } from './builtin.js';

/*
 * The calendar of an instant in an IANA zone, as Go's time package computes it (Node's ICU time-zone data
 * stands in for Go's tzdata). Layouts are in go-time-layout.ts.
 */

export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export const NS_PER_S = 1_000_000_000n;
export const MIN_NS = -(2n ** 63n);
export const MAX_NS = 2n ** 63n - 1n;

/** A civil time in a zone: what Go's Time.Date/Clock/Weekday/Format read. */
export interface Civil {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanosecond: number;
  weekday: number; // 0 = Sunday
  yearDay: number;
  offsetSeconds: number;
  zoneAbbrev: string;
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

export function checkZone(zone: string): void {
  if (zone === '' || zone === 'UTC' || zone === 'Local') return;
  try {
    formatterFor(zone);
  } catch {
    throw new BuiltinError(`unknown time zone ${zone}`);
  }
}

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = offsetFormatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset', year: 'numeric' });
    offsetFormatters.set(zone, f);
  }
  return f;
}

/** The zone's UTC offset at an instant, in seconds. */
export function offsetAt(zone: string, epochSeconds: number): number {
  if (zone === '' || zone === 'UTC') return 0;
  const name = zone === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : zone;
  const ms = Math.max(-8.64e15, Math.min(8.64e15, epochSeconds * 1000));
  const part = formatterFor(name).formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?/.exec(part);
  if (!m) return 0;
  const secs = Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -secs : secs;
}

function abbrevAt(zone: string, epochSeconds: number, offset: number): string {
  if (zone === '' || zone === 'UTC') return 'UTC';
  try {
    const name = zone === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : zone;
    const v = new Intl.DateTimeFormat('en-US', { timeZone: name, timeZoneName: 'short' }).formatToParts(new Date(epochSeconds * 1000)).find((p) => p.type === 'timeZoneName')?.value;
    if (v && /^[A-Z]{2,5}$/.test(v)) return v;
  } catch {
    // fall through to the numeric form Go uses for zones without an abbreviation
  }
  const sign = offset < 0 ? '-' : '+';
  const a = Math.abs(offset);
  const hh = String(Math.floor(a / 3600)).padStart(2, '0');
  const mm = Math.floor((a % 3600) / 60);
  return mm ? `${sign}${hh}${String(mm).padStart(2, '0')}` : `${sign}${hh}`;
}

export function splitNs(ns: bigint): { seconds: number; nanos: number } {
  let s = ns / NS_PER_S;
  let n = ns % NS_PER_S;
  if (n < 0n) {
    n += NS_PER_S;
    s -= 1n;
  }
  return { seconds: Number(s), nanos: Number(n) };
}

export function civil(ns: bigint, zone: string): Civil {
  const { seconds, nanos } = splitNs(ns);
  const offset = offsetAt(zone, seconds);
  const d = new Date((seconds + offset) * 1000);
  const year = d.getUTCFullYear();
  const yearStart = Date.UTC(year, 0, 1);
  const yearDay = Math.floor((Date.UTC(year, d.getUTCMonth(), d.getUTCDate()) - yearStart) / 86_400_000) + 1;
  return {
    year,
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanosecond: nanos,
    weekday: d.getUTCDay(),
    yearDay,
    offsetSeconds: offset,
    zoneAbbrev: abbrevAt(zone, seconds, offset),
  };
}

/** Civil fields (normalised like Go's time.Date) in a zone -> epoch nanoseconds. */
export function fromCivil(y: number, mo: number, d: number, h: number, mi: number, s: number, nanos: number, zone: string): bigint {
  const wallMs = utcMs(y, mo - 1, d, h, mi, s);
  const wallSeconds = Math.floor(wallMs / 1000);
  // Go: use the offset in force at (wall - offset); try the offset at the wall time first, then correct once.
  let offset = offsetAt(zone, wallSeconds);
  const second = offsetAt(zone, wallSeconds - offset);
  if (second !== offset) offset = second;
  return (BigInt(wallSeconds - offset) * NS_PER_S) + BigInt(nanos);
}

export function utcMs(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const date = new Date(0);
  date.setUTCFullYear(y, mo, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime();
}

export function daysIn(y: number, mo: number): number {
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return mo === 2 ? (leap ? 29 : 28) : ([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1] as number);
}

export const WEEKDAYS = DAYS;
