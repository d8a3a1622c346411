import { BuiltinError, stringArg, objectArg, operandError, type BuiltinTable } from './builtin.js';
import type { Value } from './json-values.js';

const BASE64URL_PADDED = /^[A-Za-z0-9_-]*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

/**
 * OPA's base64url.decode: the padding RFC 7515 Appendix C lets encoders omit is restored, then Go's
 * URLEncoding decodes strictly (Node's Buffer would skip invalid characters silently).
 */
export function base64UrlDecode(input: string): Buffer {
  // Fast path (JWT segments): Node's lenient decoder, accepted only when the input is exactly the canonical
  // unpadded encoding of what it decoded to, which Go's strict decoder accepts too.
  const quick = Buffer.from(input, 'base64url');
  if (quick.toString('base64url') === input) return quick;
  let s = input;
  if (!s.endsWith('=')) {
    switch (s.length % 4) {
      case 0:
        break;
      case 2:
        s += '==';
        break;
      case 3:
        s += '=';
        break;
      default:
        throw new BuiltinError(`illegal base64url string: ${input}`);
    }
  }
  const bad = s.length % 4 !== 0 || !BASE64URL_PADDED.test(s);
  if (bad) throw new BuiltinError(`illegal base64 data at input byte ${firstBadByte(s)}`);
  return Buffer.from(s, 'base64url');
}

function firstBadByte(s: string): number {
  for (let i = 0; i < s.length; i++) if (!/[A-Za-z0-9_-]/.test(s[i] as string)) return i;
  return s.length;
}

export function base64UrlEncodeNoPad(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** Go's url.QueryEscape: space as '+', everything but unreserved characters percent-encoded. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*~]/g, (c) => (c === '~' ? c : `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).replace(/%20/g, '+');
}

/** Go's url.QueryUnescape: '+' is a space; a malformed escape is an error. */
export function queryUnescape(s: string): string {
  const bad = /%(?![0-9A-Fa-f]{2})/.exec(s);
  if (bad) throw new BuiltinError(`invalid URL escape ${JSON.stringify(s.slice(bad.index, bad.index + 3))}`);
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '%') {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === '+') bytes.push(0x20);
    else for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

function hexDecode(s: string): string {
  if (s.length % 2 === 1) {
    const bad = firstNonHex(s);
    if (bad >= 0) throw new BuiltinError(`encoding/hex: invalid byte: U+${hexCode(s, bad)}`);
    throw new BuiltinError('encoding/hex: odd length hex string');
  }
  const bad = firstNonHex(s);
  if (bad >= 0) throw new BuiltinError(`encoding/hex: invalid byte: U+${hexCode(s, bad)}`);
  return Buffer.from(s, 'hex').toString('utf8');
}

function firstNonHex(s: string): number {
  for (let i = 0; i < s.length; i++) if (!/[0-9a-fA-F]/.test(s[i] as string)) return i;
  return -1;
}

function hexCode(s: string, i: number): string {
  const cp = s.codePointAt(i) ?? 0;
  return `${cp.toString(16).toUpperCase().padStart(4, '0')} ${JSON.stringify(String.fromCodePoint(cp)).replace(/^"|"$/g, "'")}`;
}

/** Go's url.Values.Encode: keys sorted, values in order. */
function encodeObject(obj: { [key: string]: Value }): string {
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    const values = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
    if (!values || !values.every((x) => typeof x === 'string')) {
      throw new BuiltinError('operand 1 values must be string, array[string], or set[string]');
    }
    for (const x of values as string[]) parts.push(`${queryEscape(key)}=${queryEscape(x)}`);
  }
  return parts.join('&');
}

/** Go's url.ParseQuery: '&'-separated (a ';' is an error), every value of a key kept in order. */
function decodeObject(q: string): { [key: string]: Value } {
  const out: { [key: string]: string[] } = {};
  let firstError: BuiltinError | undefined;
  for (const part of q.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) {
      firstError ??= new BuiltinError('invalid semicolon separator in query');
      continue;
    }
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    try {
      const key = queryUnescape(rawKey);
      const value = queryUnescape(rawValue);
      (out[key] ??= []).push(value);
    } catch (err) {
      firstError ??= err as BuiltinError;
    }
  }
  if (firstError) throw firstError;
  return out;
}

export const encodingBuiltins: BuiltinTable = {
  'base64url.encode_no_pad': (a) => base64UrlEncodeNoPad(Buffer.from(stringArg(a, 0), 'utf8')),
  'hex.encode': (a) => Buffer.from(stringArg(a, 0), 'utf8').toString('hex'),
  'hex.decode': (a) => hexDecode(stringArg(a, 0)),
  'urlquery.encode': (a) => queryEscape(stringArg(a, 0)),
  'urlquery.decode': (a) => queryUnescape(stringArg(a, 0)),
  'urlquery.encode_object': (a) => {
    if (typeof a[0] !== 'object' || a[0] === null || Array.isArray(a[0])) throw operandError(1, 'object', a[0]);
    return encodeObject(objectArg(a, 0));
  },
  'urlquery.decode_object': (a) => decodeObject(stringArg(a, 0)),
};
