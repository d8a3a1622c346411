import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so equal arguments always hash the same. */
export function canonicalJson(value: unknown): string {
  // Most arguments (one key, or keys already in order) are canonical as JSON.stringify writes them: one
  // native call instead of a string built piece by piece (the MCP check renders them for every tools/call).
  return writtenCanonically(value) ? (JSON.stringify(value) ?? 'null') : canonicalJsonPieces(value);
}

function canonicalJsonPieces(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/**
 * Whether JSON.stringify writes `value` exactly as canonicalJsonPieces would: only JSON's own kinds of values
 * (plain objects and arrays, strings, numbers, booleans, null, and undefined, which both leave out or write
 * as null alike), and every object's keys already in the order sort() gives them. Anything else (a Date, a
 * class instance, a function, a bigint) takes the piece-by-piece path, as before.
 */
function writtenCanonically(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (const item of value) if (!writtenCanonically(item)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  let previous: string | undefined;
  for (const key of Object.keys(obj)) {
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    if (!writtenCanonically(obj[key])) return false;
  }
  return true;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `sha256:<hex>` of the canonical JSON of a tool call's arguments. */
export function argumentsDigest(args: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(args))}`;
}
