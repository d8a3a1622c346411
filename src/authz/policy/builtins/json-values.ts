import { parse } from 'lossless-json';

/**
 * A value as a host builtin sees it. Integers beyond 2^53 (nanosecond timestamps, byte counts) stay exact as
 * `bigint`: JSON.parse would round `time.now_ns()` by up to 256 ns. A Rego set is a `RegoSet`, so builtins
 * that return sets hand the policy a set, not an array.
 */
export type Value = null | boolean | number | bigint | string | RegoSet | Value[] | { [key: string]: Value };

export class RegoSet {
  constructor(readonly items: Value[]) {}
}

/**
 * A builtin result already written as the text `opa_value_parse` reads (see encodeValue), so a result a
 * builtin returns again and again (a verified token's [true, header, payload]) is encoded once.
 */
export class EncodedValue {
  constructor(readonly text: string) {}
}

const LONG_DIGIT_RUN = /\d{16}/;

function exactNumber(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) || !/^-?\d+$/.test(text) ? n : BigInt(text);
}

/** A builtin's result as a value, its text read back when it came pre-encoded (tests, tools). */
export function resultValue(r: Value | EncodedValue | undefined): Value | undefined {
  return r instanceof EncodedValue ? decodeRegoValue(r.text) : r;
}

/** JSON text -> Value; the fast native parser unless the text may hold an integer too large for a double. */
export function decodeValue(text: string): Value {
  // A string argument (a token, a layout) holds no number: skip the scan
  if (text.charCodeAt(0) === 0x22 || !LONG_DIGIT_RUN.test(text)) return JSON.parse(text) as Value;
  return parse(text, null, exactNumber) as Value;
}

/** Value -> the text `opa_value_parse` reads: JSON, plus `{a,b}` / `set()` for sets and exact bigints. */
export function encodeValue(value: Value): string {
  return plainJson(value) ? JSON.stringify(value) : regoText(value);
}

/** True when JSON.stringify writes the value exactly (no bigint, no set). */
function plainJson(v: Value): boolean {
  if (typeof v === 'bigint' || v instanceof RegoSet) return false;
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every(plainJson);
  for (const k in v) if (!plainJson(v[k] as Value)) return false;
  return true;
}

function regoText(v: Value): string {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof RegoSet) return v.items.length === 0 ? 'set()' : `{${v.items.map(regoText).join(',')}}`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(regoText).join(',')}]`;
  return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${regoText(v[k] as Value)}`).join(',')}}`;
}

/**
 * Rego value text (what `opa_value_dump` writes) -> Value, keeping sets as RegoSet. Used only for the few
 * builtins whose meaning depends on set vs array; everything else takes the JSON path.
 */
export function decodeRegoValue(text: string): Value {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  const value = (): Value => {
    ws();
    const c = text[i];
    if (c === '[') {
      i++;
      const out: Value[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i++] === ']') return out;
      }
    }
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return {};
      }
      const first = value();
      ws();
      if (text[i] === ':') {
        const obj: { [k: string]: Value } = {};
        let key = first;
        for (;;) {
          i++; // ':'
          obj[typeof key === 'string' ? key : regoText(key)] = value();
          ws();
          if (text[i++] === '}') return obj;
          key = value();
          ws();
        }
      }
      const items: Value[] = [first];
      for (;;) {
        if (text[i++] === '}') return new RegoSet(items);
        items.push(value());
        ws();
      }
    }
    if (text.startsWith('set()', i)) {
      i += 5;
      return new RegoSet([]);
    }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      return s;
    }
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!m) throw new Error(`cannot read a Rego value at offset ${i}`);
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : exactNumber(m[0]);
  };
  return value();
}

export function isObject(v: Value | undefined): v is { [key: string]: Value } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegoSet);
}

export function typeName(v: Value | undefined): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof RegoSet) return 'set';
  if (typeof v === 'bigint') return 'number';
  return typeof v;
}
