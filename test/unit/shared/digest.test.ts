import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/shared/digest.js';

/** The definition canonicalJson must keep (keys sorted at every level), written the plain way. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`).join(',')}}`;
}

const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });

const cases: Array<[string, unknown]> = [
  ['one key', { message: 'x'.repeat(100) }],
  ['sorted keys', { a: 1, b: [1, 'two', null, true], c: { d: 'e' } }],
  ['unsorted keys', { b: 1, a: 2 }],
  ['unsorted deep inside sorted', { a: { z: 1, y: [{ q: 1, p: 2 }] }, b: 2 }],
  ['integer-like keys (Object.keys puts 9 before 10, sort does not)', { 9: 'nine', 10: 'ten' }],
  ['undefined values left out', { a: undefined, b: 1, c: undefined }],
  ['undefined out of order', { b: 1, a: undefined }],
  ['undefined in arrays', [undefined, 1]],
  ['numbers JSON cannot write', [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 5e-324]],
  ['escapes and lone surrogates', { '\u0000': '\ud800', 'é': '"\\\n' }],
  ['a Date (an object with toJSON)', { at: new Date(0) }],
  ['a null-prototype object', nullProto],
  ['a function value', { a: 1, f: () => 1 }],
  ['top-level scalars', 'text'],
  ['top-level undefined', undefined],
  ['empty containers', { a: {}, b: [] }],
];

describe('canonicalJson', () => {
  it.each(cases)('%s: the same text as keys sorted piece by piece', (_name, value) => {
    expect(canonicalJson(value)).toBe(reference(value));
  });

  it('sorts keys whatever order they were written in', () => {
    expect(canonicalJson(JSON.parse('{"b":{"d":1,"c":2},"a":[{"y":1,"x":2}]}'))).toBe('{"a":[{"x":2,"y":1}],"b":{"c":2,"d":1}}');
  });

  it('throws on a bigint as JSON.stringify does', () => {
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
  });
});
