import { BuiltinError, stringArg, type BuiltinTable } from './builtin.js';

/** semver.* with OPA's internal/semver: SemVer 2.0 with an optional leading "v"; build metadata ignored in order. */
interface Version {
  major: bigint;
  minor: bigint;
  patch: bigint;
  pre: string;
}

const IDENTIFIERS = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/;
const GO_INT = /^[+-]?\d+$/;

function cut(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function goInt(s: string): bigint | undefined {
  if (!GO_INT.test(s)) return undefined;
  const v = BigInt(s);
  return v > 2n ** 63n - 1n || v < -(2n ** 63n) ? undefined : v;
}

function parse(version: string): Version | undefined {
  let v = version.startsWith('v') ? version.slice(1) : version;
  let meta: string;
  [v, meta] = cut(v, '+');
  if (meta !== '' && !IDENTIFIERS.test(meta)) return undefined;
  let pre: string;
  [v, pre] = cut(v, '-');
  if (pre !== '' && !IDENTIFIERS.test(pre)) return undefined;
  const parts = v.split('.');
  if (parts.length !== 3) return undefined;
  const [major, minor, patch] = parts.map(goInt);
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  return { major, minor, patch, pre };
}

const allDecimals = (s: string): boolean => /^\d+$/.test(s);

function compare(a: Version, b: Version): number {
  for (const k of ['major', 'minor', 'patch'] as const) {
    if (a[k] > b[k]) return 1;
    if (a[k] < b[k]) return -1;
  }
  if (a.pre === b.pre) return 0;
  if (a.pre === '') return 1;
  if (b.pre === '') return -1;
  const as = a.pre.split('.');
  const bs = b.pre.split('.');
  for (let i = 0; ; i++) {
    const x = as[i];
    const y = bs[i];
    if (x === undefined && y === undefined) return 0;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xi = allDecimals(x);
    const yi = allDecimals(y);
    if (xi && !yi) return -1;
    if (!xi && yi) return 1;
    if (xi && yi) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d > 0n ? 1 : -1;
    } else if (x !== y) return x > y ? 1 : -1;
  }
}

export const semverBuiltins: BuiltinTable = {
  'semver.is_valid': (a) => typeof a[0] === 'string' && parse(a[0]) !== undefined,
  'semver.compare': (a) => {
    const x = stringArg(a, 0);
    const y = stringArg(a, 1);
    const vx = parse(x);
    if (!vx) throw new BuiltinError(`operand 1: string ${x} is not a valid SemVer`);
    const vy = parse(y);
    if (!vy) throw new BuiltinError(`operand 2: string ${y} is not a valid SemVer`);
    return compare(vx, vy);
  },
};
