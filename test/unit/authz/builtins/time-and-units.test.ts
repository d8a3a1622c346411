import { describe, expect, it } from 'vitest';
import type { EvaluationContext } from '../../../../src/authz/policy/builtins/builtin.js';
import { decodeRegoValue, decodeValue, encodeValue, RegoSet, resultValue, type Value } from '../../../../src/authz/policy/builtins/json-values.js';
import { netBuiltins } from '../../../../src/authz/policy/builtins/net.js';
import { semverBuiltins } from '../../../../src/authz/policy/builtins/semver.js';
import { timeBuiltins } from '../../../../src/authz/policy/builtins/time.js';
import { unitsBuiltins } from '../../../../src/authz/policy/builtins/units.js';

const ctx: EvaluationContext = { nowNs: () => 0n, memo: new Map() };
const table = { ...timeBuiltins, ...unitsBuiltins, ...semverBuiltins, ...netBuiltins };
const call = (name: string, ...args: Value[]): Value | undefined => resultValue((table[name] as NonNullable<(typeof table)[string]>)(args, ctx));

describe('host builtins: values, time, units, semver, net', () => {
  it('keeps integers beyond 2^53 exact both ways, and sets as sets', () => {
    const v = decodeValue('[1670006453141828752, 1.5, "x"]');
    expect(v).toEqual([1670006453141828752n, 1.5, 'x']);
    expect(encodeValue(v)).toBe('[1670006453141828752,1.5,"x"]');
    expect(encodeValue(new RegoSet([]))).toBe('set()');
    expect(decodeRegoValue('{"a", "b"}')).toEqual(new RegoSet(['a', 'b']));
    expect(decodeRegoValue('{"k": set(), "n": 12345678901234567890}')).toEqual({ k: new RegoSet([]), n: 12345678901234567890n });
  });

  it('time: Go layouts both ways, zones, durations with d/w/y, ranges', () => {
    const ns = 1670006453141828752n;
    expect(call('time.format', ns)).toBe('2022-12-02T18:40:53.141828752Z');
    expect(call('time.format', [ns, 'Asia/Kolkata', 'Mon Jan 02 15:04:05 -0700 2006'])).toBe('Sat Dec 03 00:10:53 +0530 2022');
    expect(call('time.parse_rfc3339_ns', '2022-12-02T18:40:53.141828752Z')).toBe(ns);
    expect(call('time.parse_ns', '2006-01-02 15:04:05 -0700', '2022-12-03 00:10:53 +0530')).toBe(1670006453000000000n);
    expect(call('time.parse_duration_ns', '1h30m')).toBe(5_400_000_000_000n);
    expect(call('time.parse_duration_ns', '2d')).toBe(172_800_000_000_000n);
    expect(() => call('time.parse_duration_ns', '5x')).toThrow('time: unknown unit "x" in duration "5x"');
    expect(call('time.date', [ns, 'America/New_York'])).toEqual([2022, 12, 2]);
    expect(call('time.weekday', ns)).toBe('Friday');
    expect(call('time.diff', 1583020800000000000n, 1580515200000000000n)).toEqual([0, 1, 0, 0, 0, 0]);
    expect(call('time.diff', 1583020800000000000n, 1580601600000000000n)).toEqual([0, 0, 28, 0, 0, 0]);
    expect(() => call('time.parse_rfc3339_ns', '2262-04-11T23:47:16.854775808Z')).toThrow('time outside of valid range');
  });

  it('units and semver as OPA', () => {
    expect(call('units.parse_bytes', '1KiB')).toBe(1024n);
    expect(call('units.parse_bytes', '1e18EiB')).toBe(1152921504606846976n * 10n ** 18n);
    expect(() => call('units.parse_bytes', '1 KB')).toThrow('units.parse_bytes: spaces not allowed in resource strings');
    expect(call('units.parse', '100m')).toBe(0.1);
    expect(call('units.parse', '1Mi')).toBe(1048576n);
    expect(call('semver.compare', '1.0.0-alpha.1', '1.0.0-alpha.beta')).toBe(-1);
    expect(call('semver.compare', 'v1.2.3', '1.2.3+build')).toBe(0);
    expect(call('semver.is_valid', '1.2')).toBe(false);
  });

  it('net: merge, expand, contains_matches with set results', () => {
    expect(call('net.cidr_merge', ['192.0.128.0/24', '192.0.129.0/24'])).toEqual(new RegoSet(['192.0.128.0/23']));
    expect(call('net.cidr_merge', new RegoSet(['10.0.0.0/25', '10.0.0.128/26', '10.0.0.192/26', '2001:db8::/33', '2001:db8:8000::/33']))).toEqual(new RegoSet(['10.0.0.0/24', '2001:db8::/32']));
    expect(call('net.cidr_expand', '192.168.0.0/31')).toEqual(new RegoSet(['192.168.0.0', '192.168.0.1']));
    expect(() => call('net.cidr_expand', '10.0.0.0/8')).toThrow(/more than the embedded engine expands/);
    expect(call('net.cidr_contains_matches', { a: '10.0.0.0/8' }, ['10.1.2.3', '192.168.0.1'])).toEqual(new RegoSet([['a', 0]]));
    expect(call('net.cidr_is_valid', '10.0.0.0/33')).toBe(false);
  });
});
