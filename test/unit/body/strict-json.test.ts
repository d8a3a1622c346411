import { describe, expect, it } from 'vitest';
import { BodyError } from '../../../src/shared/body/body-error.js';
import { decodeUtf8Strict, parseStrictJson, parseToolArguments, sourceTextIsExact } from '../../../src/shared/body/strict-json.js';

function error(fn: () => unknown): BodyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BodyError) return err;
    throw err;
  }
  throw new Error('expected a BodyError');
}

describe('strict JSON', () => {
  it('returns what JSON.parse returns for valid input', () => {
    const text = '{"a":[1,2.5,-3e2,{"b":null,"c":true}],"s":"x\\"y\\\\","u":"\\u00e9","n":{}}';
    expect(parseStrictJson(text)).toEqual(JSON.parse(text));
    expect(parseStrictJson('"plain"')).toBe('plain');
    expect(parseStrictJson('[]')).toEqual([]);
  });

  it('refuses duplicate keys at any depth and names the object', () => {
    const e = error(() => parseStrictJson('{"a":1,"b":{"c":[1,{"d":1,"d":2}]}}'));
    expect(e.code).toBe('duplicate_key');
    expect(e.pointer).toBe('/b/c/1');
    expect(e.message).toContain('"d"');
    expect(error(() => parseStrictJson('{"ns":"staging","ns":"production"}')).pointer).toBe('');
  });

  it('compares keys after unescaping', () => {
    expect(error(() => parseStrictJson('{"a":1,"\\u0061":2}')).code).toBe('duplicate_key');
    expect(error(() => parseStrictJson('{"a/b":1,"a\\/b":2}')).code).toBe('duplicate_key');
  });

  it('does not mistake strings that look like keys for keys', () => {
    expect(parseStrictJson('{"a":"{\\"a\\":1}","b":["a","a"],"c":{"a":1}}')).toEqual({ a: '{"a":1}', b: ['a', 'a'], c: { a: 1 } });
    expect(parseStrictJson('{"x":"\\\\","x2":"\\\\\\""}')).toEqual({ x: '\\', x2: '\\"' });
  });

  it('keeps __proto__ as an own property, like JSON.parse', () => {
    const v = parseStrictJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting past the depth limit', () => {
    expect(error(() => parseStrictJson(`${'['.repeat(65)}${']'.repeat(65)}`)).code).toBe('too_deep');
    expect(parseStrictJson(`${'['.repeat(64)}${']'.repeat(64)}`)).toBeDefined();
    expect(error(() => parseStrictJson('[[[1]]]', { maxDepth: 2 })).code).toBe('too_deep');
  });

  it('reports syntax errors', () => {
    const e = error(() => parseStrictJson('{"a": [1,'));
    expect(e.code).toBe('invalid_json');
  });

  it('tool arguments must be an object; an empty body means none', () => {
    expect(parseToolArguments('')).toEqual({});
    expect(parseToolArguments(' {"a":1} ')).toEqual({ a: 1 });
    for (const body of ['[]', '1', '"s"', 'null']) expect(error(() => parseToolArguments(body)).code).toBe('not_an_object');
  });

  it('decodes UTF-8 strictly', () => {
    expect(decodeUtf8Strict(Buffer.from('héllo ✓'))).toBe('héllo ✓');
    expect(error(() => decodeUtf8Strict(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))).code).toBe('invalid_utf8');
    expect(error(() => decodeUtf8Strict(Buffer.from([0xed, 0xa0, 0x80]))).code).toBe('invalid_utf8'); // lone surrogate
  });
});

describe('source text the policy can read in place of the parsed value', () => {
  it('is exact when every number literal is how JavaScript writes the number back', () => {
    expect(sourceTextIsExact(parseStrictJson('{"a": 1, "b": [2.5, -3, 0.1, 0, 123456789], "c": "1e-400"}'))).toBe(true);
  });

  it('is not exact when a literal reads as another number in JavaScript, or is written another way', () => {
    for (const literal of ['1e-400', '1e400', '9007199254740993', '1.0', '1E2', '-0', '0.10']) {
      expect(sourceTextIsExact(parseStrictJson(`{"n": [${literal}]}`)), literal).toBe(false);
    }
  });

  it('refuses an unpaired surrogate escape (JavaScript keeps it, OPA reads U+FFFD), accepts a pair', () => {
    expect(() => parseStrictJson('{"name": "prod\\ud800"}')).toThrow(expect.objectContaining({ code: 'invalid_unicode' }));
    expect(() => parseStrictJson('{"name": "\\udc00x"}')).toThrow(expect.objectContaining({ code: 'invalid_unicode' }));
    expect(parseStrictJson('{"name": "\\ud83d\\ude00"}')).toEqual({ name: '😀' });
  });
});
