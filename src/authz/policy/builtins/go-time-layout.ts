import { BuiltinError } from './builtin.js';
import { daysIn, DAYS, MONTHS, NS_PER_S, utcMs, type Civil } from './go-time.js';

/** Go's time layouts ("2006-01-02T15:04:05Z07:00"): time.format writes them, time.parse_ns reads them. */

export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
};

type Chunk =
  | { kind: 'lit'; text: string }
  | { kind: 'std'; std: string }
  | { kind: 'frac'; digits: number; trim: boolean; sep: string };

const STD_PREFIXES = [
  'January', 'Jan', 'Monday', 'Mon', 'MST', '2006', '002', '01', '02', '03', '04', '05', '06', '__2', '_2', '15', '1', '2', '3', '4', '5',
  'PM', 'pm', 'Z07:00:00', 'Z070000', 'Z07:00', 'Z0700', 'Z07', '-07:00:00', '-070000', '-07:00', '-0700', '-07',
];

function tokenize(layout: string): Chunk[] {
  const out: Chunk[] = [];
  let lit = '';
  for (let i = 0; i < layout.length; ) {
    const rest = layout.slice(i);
    const frac = /^([.,])(0+|9+)(?![0-9])/.exec(rest);
    // a fractional second only directly after a seconds field
    if (frac && /(05|5)$/.test(layout.slice(0, i))) {
      if (lit) out.push({ kind: 'lit', text: lit });
      lit = '';
      out.push({ kind: 'frac', digits: (frac[2] as string).length, trim: (frac[2] as string)[0] === '9', sep: frac[1] as string });
      i += frac[0].length;
      continue;
    }
    const std = STD_PREFIXES.find((p) => rest.startsWith(p) && !(p === 'Jan' && /^Jan[a-z]/.test(rest) && !rest.startsWith('January')) && !(p === 'Mon' && /^Mon[a-z]/.test(rest) && !rest.startsWith('Monday')));
    if (std) {
      if (lit) out.push({ kind: 'lit', text: lit });
      lit = '';
      out.push({ kind: 'std', std });
      i += std.length;
      continue;
    }
    lit += layout[i];
    i++;
  }
  if (lit) out.push({ kind: 'lit', text: lit });
  return out;
}

const pad = (n: number, w: number): string => String(Math.abs(n)).padStart(w, '0');

function zoneOffset(std: string, off: number): string {
  if (std.startsWith('Z') && off === 0) return 'Z';
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  const hh = pad(Math.floor(a / 3600), 2);
  const mm = pad(Math.floor((a % 3600) / 60), 2);
  const ss = pad(a % 60, 2);
  const shape = std.replace(/^Z/, '-');
  switch (shape) {
    case '-07':
      return `${sign}${hh}`;
    case '-0700':
      return `${sign}${hh}${mm}`;
    case '-07:00':
      return `${sign}${hh}:${mm}`;
    case '-070000':
      return `${sign}${hh}${mm}${ss}`;
    default:
      return `${sign}${hh}:${mm}:${ss}`;
  }
}

export function formatTime(c: Civil, layout: string): string {
  let s = '';
  for (const ch of tokenize(layout)) {
    if (ch.kind === 'lit') s += ch.text;
    else if (ch.kind === 'frac') {
      let digits = pad(c.nanosecond, 9).slice(0, ch.digits);
      if (ch.trim) digits = digits.replace(/0+$/, '');
      if (digits) s += ch.sep + digits;
    } else {
      s += formatStd(c, ch.std);
    }
  }
  return s;
}

function formatStd(c: Civil, std: string): string {
  switch (std) {
    case 'January':
      return MONTHS[c.month - 1] as string;
    case 'Jan':
      return (MONTHS[c.month - 1] as string).slice(0, 3);
    case 'Monday':
      return DAYS[c.weekday] as string;
    case 'Mon':
      return (DAYS[c.weekday] as string).slice(0, 3);
    case 'MST':
      return c.zoneAbbrev;
    case '2006':
      return c.year < 0 ? `-${pad(c.year, 4)}` : pad(c.year, 4);
    case '06':
      return pad(c.year % 100, 2);
    case '01':
      return pad(c.month, 2);
    case '1':
      return String(c.month);
    case '02':
      return pad(c.day, 2);
    case '_2':
      return String(c.day).padStart(2, ' ');
    case '2':
      return String(c.day);
    case '002':
      return pad(c.yearDay, 3);
    case '__2':
      return String(c.yearDay).padStart(3, ' ');
    case '15':
      return pad(c.hour, 2);
    case '03':
      return pad(c.hour % 12 === 0 ? 12 : c.hour % 12, 2);
    case '3':
      return String(c.hour % 12 === 0 ? 12 : c.hour % 12);
    case '04':
      return pad(c.minute, 2);
    case '4':
      return String(c.minute);
    case '05':
      return pad(c.second, 2);
    case '5':
      return String(c.second);
    case 'PM':
      return c.hour >= 12 ? 'PM' : 'AM';
    case 'pm':
      return c.hour >= 12 ? 'pm' : 'am';
    default:
      return zoneOffset(std, c.offsetSeconds);
  }
}

/** Go's time.Parse (UTC unless the value names an offset). Returns epoch nanoseconds. */
export function parseTime(layout: string, value: string): bigint {
  const fail = (why = ''): BuiltinError => new BuiltinError(`parsing time ${JSON.stringify(value)} as ${JSON.stringify(layout)}: cannot parse ${JSON.stringify(value)} as ${JSON.stringify(layout)}${why}`);
  let y = 1, mo = 1, d = 1, h = 0, mi = 0, s = 0, nanos = 0;
  let pm: boolean | undefined;
  let offset: number | undefined;
  let v = value;
  const chunks = tokenize(layout);
  const num = (re: RegExp): number => {
    const m = re.exec(v);
    if (!m) throw fail();
    v = v.slice(m[0].length);
    return Number(m[0].trim());
  };
  for (let idx = 0; idx < chunks.length; idx++) {
    const ch = chunks[idx] as Chunk;
    if (ch.kind === 'lit') {
      if (!v.startsWith(ch.text)) throw fail();
      v = v.slice(ch.text.length);
      continue;
    }
    if (ch.kind === 'frac') {
      const m = /^[.,](\d+)/.exec(v);
      if (!m) {
        if (ch.trim) continue;
        throw fail();
      }
      nanos = Number(((m[1] as string) + '000000000').slice(0, 9));
      v = v.slice(m[0].length);
      continue;
    }
    switch (ch.std) {
      case '2006':
        y = num(/^\d{4}/);
        break;
      case '06': {
        const yy = num(/^\d{2}/);
        y = yy >= 69 ? 1900 + yy : 2000 + yy;
        break;
      }
      case 'January':
      case 'Jan': {
        const names = ch.std === 'January' ? MONTHS : MONTHS.map((m) => m.slice(0, 3));
        const i = names.findIndex((n) => v.toLowerCase().startsWith(n.toLowerCase()));
        if (i < 0) throw fail();
        mo = i + 1;
        v = v.slice((names[i] as string).length);
        break;
      }
      case 'Monday':
      case 'Mon': {
        const names = ch.std === 'Monday' ? DAYS : DAYS.map((m) => m.slice(0, 3));
        const i = names.findIndex((n) => v.toLowerCase().startsWith(n.toLowerCase()));
        if (i < 0) throw fail();
        v = v.slice((names[i] as string).length);
        break;
      }
      case '01':
        mo = num(/^\d{2}/);
        break;
      case '1':
        mo = num(/^\d{1,2}/);
        break;
      case '02':
        d = num(/^\d{2}/);
        break;
      case '_2':
        d = num(/^[ \d]\d/);
        break;
      case '2':
        d = num(/^\d{1,2}/);
        break;
      case '002':
      case '__2':
        num(/^[ \d]{3}/);
        break;
      case '15':
        h = num(/^\d{1,2}/);
        break;
      case '03':
        h = num(/^\d{2}/);
        break;
      case '3':
        h = num(/^\d{1,2}/);
        break;
      case '04':
        mi = num(/^\d{2}/);
        break;
      case '4':
        mi = num(/^\d{1,2}/);
        break;
      case '05':
      case '5': {
        s = num(ch.std === '05' ? /^\d{2}/ : /^\d{1,2}/);
        // Go accepts a fractional second after the seconds even when the layout has none
        const next = chunks[idx + 1];
        if (next?.kind !== 'frac') {
          const m = /^[.,](\d+)/.exec(v);
          if (m && !(next?.kind === 'lit' && /^[.,]\d/.test(next.text))) {
            nanos = Number(((m[1] as string) + '000000000').slice(0, 9));
            v = v.slice(m[0].length);
          }
        }
        break;
      }
      case 'PM':
      case 'pm': {
        const m = /^(AM|PM|am|pm)/.exec(v);
        if (!m) throw fail();
        pm = (m[1] as string).toUpperCase() === 'PM';
        v = v.slice(2);
        break;
      }
      case 'MST': {
        const m = /^(UTC|GMT|[A-Z]{3,4})/.exec(v);
        if (!m) throw fail();
        v = v.slice((m[1] as string).length);
        if (m[1] === 'UTC' || m[1] === 'GMT') offset = 0;
        break;
      }
      default: {
        if (ch.std.startsWith('Z') && v.startsWith('Z')) {
          v = v.slice(1);
          offset = 0;
          break;
        }
        const m = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?/.exec(v);
        if (!m) throw fail();
        const shape = ch.std.replace(/^Z/, '-');
        const wantLen = { '-07': 3, '-0700': 5, '-07:00': 6, '-070000': 7, '-07:00:00': 9 }[shape] ?? m[0].length;
        const text = v.slice(0, wantLen);
        const mm = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(text);
        if (!mm || text.length !== wantLen) throw fail();
        const secs = Number(mm[2]) * 3600 + Number(mm[3] ?? 0) * 60 + Number(mm[4] ?? 0);
        offset = mm[1] === '-' ? -secs : secs;
        v = v.slice(wantLen);
      }
    }
  }
  if (v !== '') throw new BuiltinError(`parsing time ${JSON.stringify(value)}: extra text: ${JSON.stringify(v)}`);
  if (pm !== undefined) {
    if (h > 12) throw fail(': hour out of range');
    if (pm && h < 12) h += 12;
    else if (!pm && h === 12) h = 0;
  }
  if (mo < 1 || mo > 12) throw new BuiltinError(`parsing time ${JSON.stringify(value)}: month out of range`);
  if (d < 1 || d > daysIn(y, mo)) throw new BuiltinError(`parsing time ${JSON.stringify(value)}: day out of range`);
  if (h > 23) throw new BuiltinError(`parsing time ${JSON.stringify(value)}: hour out of range`);
  if (mi > 59) throw new BuiltinError(`parsing time ${JSON.stringify(value)}: minute out of range`);
  if (s > 59) throw new BuiltinError(`parsing time ${JSON.stringify(value)}: second out of range`);
  const wall = BigInt(Math.floor(utcMs(y, mo - 1, d, h, mi, s) / 1000));
  return (wall - BigInt(offset ?? 0)) * NS_PER_S + BigInt(nanos);
}
