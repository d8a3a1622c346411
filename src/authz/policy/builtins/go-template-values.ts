import { NotImplementedError, type BuiltinError } from './builtin.js';
import { isObject, RegoSet, type Value } from './json-values.js';

/**
 * Template values as Go sees OPA's data (map[string]any, []any, json.Number, bool, nil), fmt's %v, and
 * text/template's truth and comparisons over them.
 */

/** json.Number */
export class GoNumber {
  constructor(readonly text: string) {}
}
/** An integer literal of the template (Go int). */
export class GoInt {
  constructor(readonly value: bigint) {}
}
/** No value (a missing map key): printed "<no value>", and a field of it is no value again. */
export const INVALID: unique symbol = Symbol('invalid');

export type GoValue = null | boolean | string | GoNumber | GoInt | GoValue[] | { [key: string]: GoValue } | typeof INVALID;

export function toGoValue(v: Value): GoValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return new GoNumber(String(v));
  if (Array.isArray(v)) return v.map(toGoValue);
  if (v instanceof RegoSet) return v.items.map(toGoValue);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toGoValue(x)]));
}

export const isMap = (v: GoValue): v is { [key: string]: GoValue } =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof GoNumber) && !(v instanceof GoInt) && isObject(v as Value);

export function typeName(v: GoValue): string {
  if (v === INVALID || v === null) return 'nil';
  if (v instanceof GoNumber) return 'json.Number';
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  return Array.isArray(v) ? '[]interface {}' : 'map[string]interface {}';
}

/** fmt's %v */
export function format(v: GoValue, top: boolean): string {
  if (v === INVALID) return '<no value>';
  if (v === null) return top ? '<no value>' : '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (v instanceof GoNumber) return v.text;
  if (v instanceof GoInt) return v.value.toString();
  if (Array.isArray(v)) return `[${v.map((x) => format(x, false)).join(' ')}]`;
  return `map[${Object.keys(v).sort().map((k) => `${k}:${format(v[k] as GoValue, false)}`).join(' ')}]`;
}

export function truth(v: GoValue): boolean {
  if (v === INVALID || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (v instanceof GoNumber) return v.text.length > 0;
  if (v instanceof GoInt) return v.value !== 0n;
  return Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0;
}

export type Kind = 'bool' | 'int' | 'string' | 'invalid';

export function kind(v: GoValue): Kind {
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'string' || v instanceof GoNumber) return 'string';
  return 'invalid';
}

export const text = (v: GoValue): string => (v instanceof GoNumber ? v.text : (v as string));

/** text/template's eq for one pair. */
export function equal(x: GoValue, y: GoValue, fail: (m: string) => BuiltinError): boolean {
  const kx = kind(x);
  const ky = kind(y);
  const nil = (v: GoValue): boolean => v === null || v === INVALID;
  if (kx !== ky) {
    if (!nil(x) && !nil(y)) throw fail('incompatible types for comparison');
    return false;
  }
  if (kx === 'bool') return x === y;
  if (kx === 'int') return (x as GoInt).value === (y as GoInt).value;
  if (kx === 'string') return text(x) === text(y);
  if (nil(x) && nil(y)) return true;
  if (nil(x) || nil(y)) return false;
  throw fail('non-comparable types');
}

export function compare(x: GoValue, y: GoValue, fail: (m: string) => BuiltinError): number {
  const kx = kind(x);
  const ky = kind(y);
  if (kx === 'invalid' || ky === 'invalid' || kx === 'bool' || ky === 'bool') throw fail('invalid type for comparison');
  if (kx !== ky) throw fail('incompatible types for comparison');
  if (kx === 'int') {
    const d = (x as GoInt).value - (y as GoInt).value;
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  }
  const a = Buffer.from(text(x));
  const b = Buffer.from(text(y));
  return Buffer.compare(a, b);
}

/** One operand under a fmt verb (v, s, d, t): fmt's output, its "%!verb(type=value)" for a wrong type included. */
function fmtOperand(verb: string, v: GoValue, nested = false): string {
  // a nil inside a list or map is "<nil>" whatever the verb; a nil operand is a bad verb but for %v
  if (v === null || v === INVALID) return verb === 'v' || nested ? '<nil>' : `%!${verb}(<nil>)`;
  if (Array.isArray(v)) return `[${v.map((x) => fmtOperand(verb, x, true)).join(' ')}]`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${fmtOperand(verb, k, true)}:${fmtOperand(verb, v[k] as GoValue, true)}`).join(' ')}]`;
  const fits = typeof v === 'string' || v instanceof GoNumber ? verb === 's' || verb === 'v' : typeof v === 'boolean' ? verb === 't' || verb === 'v' : verb === 'd' || verb === 'v';
  return fits ? format(v, false) : `%!${verb}(${typeName(v)}=${format(v, false)})`;
}

/**
 * fmt.Sprintf for the verbs %v, %s, %d, %t and %% without flags, width or precision (what templates use);
 * a missing operand is "%!s(MISSING)", extra ones "%!(EXTRA type=value, ...)", as fmt writes them. Any
 * other verb or a flag is not reproduced.
 */
export function goSprintf(formatText: string, args: GoValue[]): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < formatText.length; i++) {
    const c = formatText[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const verb = formatText[++i];
    if (verb === '%') out += '%';
    else if (verb !== undefined && 'vsdt'.includes(verb)) out += n < args.length ? fmtOperand(verb, args[n++] as GoValue) : `%!${verb}(MISSING)`;
    else throw new NotImplementedError(`strings.render_template: printf with ${verb === undefined ? 'a trailing %' : `%${verb}`} (only %v, %s, %d, %t and %% without flags are implemented)`);
  }
  if (n < args.length) {
    out += `%!(EXTRA ${args.slice(n).map((v) => (v === null || v === INVALID ? '<nil>' : `${typeName(v)}=${format(v, false)}`)).join(', ')})`;
  }
  return out;
}
