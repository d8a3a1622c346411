import { BuiltinError, intArg, operandError, stringArg, type BuiltinTable } from './builtin.js';
import { parseExtendedDuration } from './go-duration.js';
import { checkZone, civil, daysIn, fromCivil, MAX_NS, MIN_NS, WEEKDAYS } from './go-time.js';
import { formatTime, NAMED_LAYOUTS, parseTime } from './go-time-layout.js';
import type { Value } from './json-values.js';

/** time.* as OPA's topdown/time.go; instants are integer nanoseconds kept exact as bigint. */

interface ZonedTime {
  ns: bigint;
  zone: string;
  layout: string;
}

function exactNs(v: Value | undefined, pos: number): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v !== 'number') throw operandError(pos, 'number', v);
  if (!Number.isInteger(v)) {
    // OPA converts through big.Float to int64 and requires the conversion to be exact
    throw new BuiltinError('timestamp too big');
  }
  return BigInt(v);
}

/** OPA's tzTime: a number (ns, UTC) or [ns, zone?, layout?]. */
function zoned(v: Value | undefined): ZonedTime {
  const want = 'either number (ns) or [number (ns), string (tz)]';
  let ns: bigint;
  let zone = '';
  let layout = '';
  if (Array.isArray(v)) {
    if (v.length === 0) throw operandError(1, want, v);
    ns = exactNs(v[0], 1);
    if (v.length > 1) {
      if (typeof v[1] !== 'string') throw operandError(1, 'string', v[1]);
      zone = v[1];
      checkZone(zone);
    }
    if (v.length > 2) {
      if (typeof v[2] !== 'string') throw operandError(1, 'string', v[2]);
      layout = v[2];
    }
  } else if (typeof v === 'number' || typeof v === 'bigint') {
    ns = exactNs(v, 1);
  } else throw operandError(1, want, v);
  if (ns < MIN_NS || ns > MAX_NS) throw new BuiltinError('timestamp too big');
  return { ns, zone, layout };
}

function safeNs(ns: bigint): bigint {
  if (ns < MIN_NS || ns > MAX_NS) throw new BuiltinError('time outside of valid range');
  return ns;
}

function diff(a: Value | undefined, b: Value | undefined): Value {
  const t1z = zoned(a);
  const t2z = zoned(b);
  // Go compares in t1's location
  let [x, y] = [t1z.ns, t2z.ns];
  if (x > y) [x, y] = [y, x];
  const c1 = civil(x, t1z.zone);
  const c2 = civil(y, t1z.zone);
  let year = c2.year - c1.year;
  let month = c2.month - c1.month;
  let day = c2.day - c1.day;
  let hour = c2.hour - c1.hour;
  let min = c2.minute - c1.minute;
  let sec = c2.second - c1.second;
  if (sec < 0) {
    sec += 60;
    min--;
  }
  if (min < 0) {
    min += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    day += daysIn(c1.year, c1.month);
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, min, sec];
}

export const timeBuiltins: BuiltinTable = {
  'time.now_ns': (_a, ctx) => ctx.nowNs(),
  'time.parse_ns': (a) => {
    const layout = stringArg(a, 0);
    const value = stringArg(a, 1);
    return safeNs(parseTime(NAMED_LAYOUTS[layout] ?? layout, value));
  },
  'time.parse_rfc3339_ns': (a) => safeNs(parseTime(NAMED_LAYOUTS.RFC3339 as string, stringArg(a, 0))),
  'time.parse_duration_ns': (a) => parseExtendedDuration(stringArg(a, 0)),
  'time.format': (a) => {
    const t = zoned(a[0]);
    const layout = t.layout === '' ? (NAMED_LAYOUTS.RFC3339Nano as string) : (NAMED_LAYOUTS[t.layout] ?? t.layout);
    return formatTime(civil(t.ns, t.zone), layout);
  },
  'time.date': (a) => {
    const c = civil(zoned(a[0]).ns, zoned(a[0]).zone);
    return [c.year, c.month, c.day];
  },
  'time.clock': (a) => {
    const t = zoned(a[0]);
    const c = civil(t.ns, t.zone);
    return [c.hour, c.minute, c.second];
  },
  'time.weekday': (a) => {
    const t = zoned(a[0]);
    return WEEKDAYS[civil(t.ns, t.zone).weekday] as string;
  },
  'time.add_date': (a) => {
    const t = zoned(a[0]);
    const years = intArg(a, 1);
    const months = intArg(a, 2);
    const days = intArg(a, 3);
    const c = civil(t.ns, t.zone);
    return safeNs(fromCivil(c.year + years, c.month + months, c.day + days, c.hour, c.minute, c.second, c.nanosecond, t.zone));
  },
  'time.diff': (a) => diff(a[0], a[1]),
};
