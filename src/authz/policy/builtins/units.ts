import { BuiltinError, stringArg, type BuiltinTable } from './builtin.js';

/** units.parse and units.parse_bytes as OPA's topdown/parse_units.go and parse_bytes.go, in exact arithmetic. */

const KI = 1024n;
const BINARY: Record<string, bigint> = { ki: KI, mi: KI ** 2n, gi: KI ** 3n, ti: KI ** 4n, pi: KI ** 5n, ei: KI ** 6n };
const DECIMAL: Record<string, bigint> = { k: 10n ** 3n, m: 10n ** 6n, g: 10n ** 9n, t: 10n ** 12n, p: 10n ** 15n, e: 10n ** 18n };
const MAX_EXPONENT_DIGITS = 6;

class ExponentTooLarge extends Error {}

/** OPA's extractNumAndUnit: the longest numeric prefix (digits, '.', an exponent), the rest is the unit. */
function splitNumberAndUnit(s: string): [string, string] {
  const isNum = (c: string): boolean => (c >= '0' && c <= '9') || c === '.';
  let first = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (!isNum(c) && c !== 'e' && c !== 'E' && c !== '+' && c !== '-') {
      first = i;
      break;
    }
    if (c === 'e' || c === 'E') {
      const next = s[i + 1];
      if (i === s.length - 1 || (!(next! >= '0' && next! <= '9') && next !== '+' && next !== '-')) {
        first = i;
        break;
      }
      if (next === '+' || next === '-') i++;
      let end = i + 1;
      while (end < s.length && s[end]! >= '0' && s[end]! <= '9') end++;
      if (end - (i + 1) > MAX_EXPONENT_DIGITS) throw new ExponentTooLarge();
    }
  }
  if (first === -1) return [s, ''];
  if (first === 0) return ['', s];
  return [s.slice(0, first), s.slice(first)];
}

/** A decimal literal (Go's big.Rat/big.Float SetString syntax) as an exact fraction. */
function rational(text: string): { num: bigint; den: bigint } | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || ((m[2] ?? '') === '' && (m[3] ?? '') === '')) return undefined;
  const frac = m[3] ?? '';
  let num = BigInt(`${m[2] || '0'}${frac}`);
  let den = 10n ** BigInt(frac.length);
  const exp = Number(m[4] ?? 0);
  if (exp > 0) num *= 10n ** BigInt(exp);
  else if (exp < 0) den *= 10n ** BigInt(-exp);
  if (m[1] === '-') num = -num;
  return { num, den };
}

function parseBytes(raw: string): bigint {
  const err = (msg: string): BuiltinError => new BuiltinError(`units.parse_bytes: ${msg}`);
  const s = raw.toLowerCase().replaceAll('"', '');
  if (s.includes(' ')) throw err('spaces not allowed in resource strings');
  let num: string;
  let unit: string;
  try {
    [num, unit] = splitNumberAndUnit(s);
  } catch {
    throw err('exponent too large');
  }
  if (num === '') throw err('no byte amount provided');
  const m = /^([kmgtpe])(i?)(b?)$/.exec(unit);
  if (unit !== '' && !m) throw err(`byte unit ${unit} not recognized`);
  const mult = !m ? 1n : ((m[2] ? BINARY[`${m[1]}i`] : DECIMAL[m[1] as string]) as bigint);
  const r = rational(num);
  if (!r) throw err('could not parse byte amount to a number');
  // big.Float.Int truncates towards zero
  return (r.num * mult) / r.den;
}

function parseUnits(raw: string): string {
  const err = (msg: string): BuiltinError => new BuiltinError(`units.parse: ${msg}`);
  const s = raw.replaceAll('"', '');
  if (s.includes(' ')) throw err('spaces not allowed in resource strings');
  let num: string;
  let unit: string;
  try {
    [num, unit] = splitNumberAndUnit(s);
  } catch {
    throw err('exponent too large');
  }
  if (num === '') throw err('no amount provided');
  if (unit.length > 1) unit = unit[0] + unit.slice(1).toLowerCase();
  let mul: { num: bigint; den: bigint };
  if (unit === 'm') mul = { num: 1n, den: 1000n };
  else if (unit === '') mul = { num: 1n, den: 1n };
  else if (unit === 'M') mul = { num: DECIMAL.m as bigint, den: 1n };
  else {
    const m = /^([kKgGtTpPeE])$|^([kKmMgGtTpPeE])i$/.exec(unit);
    if (!m) throw err(`unit ${unit} not recognized`);
    const v = m[1] ? DECIMAL[m[1].toLowerCase()] : BINARY[`${(m[2] as string).toLowerCase()}i`];
    mul = { num: v as bigint, den: 1n };
  }
  const r = rational(num);
  if (!r) throw err('could not parse amount to a number');
  const n = r.num * mul.num;
  const d = r.den * mul.den;
  if (n % d === 0n) return (n / d).toString();
  return floatString(n, d, 10);
}

/** big.Rat.FloatString(prec): rounded half away from zero to `prec` decimals. */
function floatString(n: bigint, d: bigint, prec: number): string {
  const neg = n < 0n !== d < 0n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const scale = 10n ** BigInt(prec);
  let q = (an * scale) / ad;
  const r = (an * scale) % ad;
  if (r * 2n >= ad) q += 1n;
  const ip = q / scale;
  const fp = (q % scale).toString().padStart(prec, '0');
  return `${neg ? '-' : ''}${ip}.${fp}`;
}

export const unitsBuiltins: BuiltinTable = {
  'units.parse_bytes': (a) => parseBytes(stringArg(a, 0)),
  'units.parse': (a) => {
    const text = parseUnits(stringArg(a, 0));
    return /^-?\d+$/.test(text) ? BigInt(text) : Number(text);
  },
};
