import { RegoSet, type Value } from './json-values.js';

/**
 * JSON exactly as Go's encoding/json.Marshal writes it (what OPA signs in io.jwt.encode_sign): object keys
 * sorted, and '<', '>', '&', U+2028, U+2029 escaped, so a token signed here is byte-identical to OPA's.
 */
export function goJsonMarshal(v: Value): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return JSON.stringify(v);
    case 'bigint':
      return v.toString();
    case 'string':
      return goJsonString(v);
    default:
      break;
  }
  if (Array.isArray(v)) return `[${v.map(goJsonMarshal).join(',')}]`;
  if (v instanceof RegoSet) return `[${v.items.map(goJsonMarshal).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${goJsonString(k)}:${goJsonMarshal(v[k] as Value)}`).join(',')}}`;
}

const GO_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] as string);
}
