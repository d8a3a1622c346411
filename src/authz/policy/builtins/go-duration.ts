import { BuiltinError } from './builtin.js';

/** Go's time.ParseDuration, exactly: "1h30m", "-1.5s", "300ms"; the result in integer nanoseconds. */
const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n,
  'μs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX = 2n ** 63n - 1n;

export function parseGoDuration(s: string): bigint {
  const orig = s;
  const invalid = (): BuiltinError => new BuiltinError(`time: invalid duration ${goQuote(orig)}`);
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s) as RegExpExecArray;
    const intPart = m[1] as string;
    const fracPart = m[2];
    if (intPart === '' && (fracPart === undefined || fracPart === '')) throw invalid();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]+/.exec(s);
    if (!u) throw new BuiltinError(`time: missing unit in duration ${goQuote(orig)}`);
    const unit = UNITS[u[0]];
    if (unit === undefined) throw new BuiltinError(`time: unknown unit ${goQuote(u[0])} in duration ${goQuote(orig)}`);
    s = s.slice(u[0].length);
    let v = BigInt(intPart || '0') * unit;
    if (fracPart) {
      // Go truncates the fraction towards zero at nanosecond precision
      v += (BigInt(fracPart) * unit) / 10n ** BigInt(fracPart.length);
    }
    total += v;
    if (total > MAX + (neg ? 1n : 0n)) throw invalid();
  }
  return neg ? -total : total;
}

/** OPA's extension: d, w and y (24h, 7d, 365d) rewritten to hours before Go parses the duration. */
export function parseExtendedDuration(s: string): bigint {
  if (s === '') throw new BuiltinError(`time: invalid duration ${goQuote(s)}`);
  if (!/[dwy]/.test(s)) return parseGoDuration(s);
  const m = /^([-+]?)((?:[0-9.]+(?:ms|us|µs|ns|[a-z]))+)$/.exec(s);
  if (!m) throw new BuiltinError(`time: invalid duration ${goQuote(s)}`);
  const coeff: Record<string, number> = { d: 24, w: 168, y: 8760 };
  let rewritten = m[1] as string;
  for (const seg of (m[2] as string).matchAll(/([0-9.]+)(ms|us|µs|ns|[a-z])/g)) {
    const c = coeff[seg[2] as string];
    if (c === undefined) {
      rewritten += seg[1] + (seg[2] as string);
      continue;
    }
    const val = Number(seg[1]);
    if (Number.isNaN(val)) throw new BuiltinError(`time: invalid duration ${goQuote(s)}`);
    rewritten += `${formatFloat(val * c)}h`;
  }
  try {
    return parseGoDuration(rewritten);
  } catch (err) {
    const msg = (err as Error).message;
    const i = msg.lastIndexOf(' ');
    throw new BuiltinError(`${i >= 0 ? msg.slice(0, i) : msg} ${goQuote(s)}`);
  }
}

/** strconv.FormatFloat(f, 'f', -1, 64). */
function formatFloat(f: number): string {
  return Number.isInteger(f) ? f.toFixed(0) : String(f);
}

export function goQuote(s: string): string {
  return JSON.stringify(s);
}
