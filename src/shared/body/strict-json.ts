import { BodyError } from './body-error.js';

/**
 * The one JSON reader for tool-call bodies, shared by the authz server and the executor.
 *
 * It accepts exactly what JSON.parse accepts, except objects with a duplicate key (at any depth, compared
 * after unescaping, so `{"a":1,"\u0061":2}` is a duplicate), nesting deeper than `maxDepth`, and strings with
 * an unpaired surrogate escape (`"\ud800"`: JavaScript keeps it, Go's JSON, hence OPA, reads U+FFFD).
 * Duplicate keys are the classic parser-disagreement bypass: one component reads the first value, another
 * the last. JSON.parse runs first (native, gives the syntax error position); a single scan then checks keys,
 * depth and escapes, and notes whether every number is written as JavaScript would write it back (see
 * sourceTextIsExact).
 */
export interface StrictJsonOptions {
  maxDepth?: number;
}

const DEFAULT_MAX_DEPTH = 64;

/** Parsed objects whose source text reads, in any JSON parser, as the value JavaScript holds. */
const exactSources = new WeakSet<object>();

/**
 * True when `value` came from parseStrictJson and its source text may stand in for JSON.stringify(value):
 * every number literal in it is exactly how JavaScript writes the number back. Otherwise a literal such as
 * `1e-400` (0 in JavaScript, not 0 for OPA's arbitrary-precision decimals) or `9007199254740993` would let
 * the policy read another value than the one the tool runs with.
 */
export function sourceTextIsExact(value: unknown): boolean {
  return typeof value === 'object' && value !== null && exactSources.has(value);
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new BodyError('invalid_utf8', 'body is not valid UTF-8');
  }
}

export function parseStrictJson(text: string, opts: StrictJsonOptions = {}): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BodyError('invalid_json', `invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value === 'object' && value !== null && scan(text, opts.maxDepth ?? DEFAULT_MAX_DEPTH).numbersExact) exactSources.add(value);
  return value;
}

/** A tool call's arguments: a JSON object (an empty body means no arguments). */
export function parseToolArguments(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  const value = parseStrictJson(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BodyError('not_an_object', `tool arguments must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

interface Frame {
  keys: Set<string> | undefined; // undefined for arrays
  expectKey: boolean;
  key: string; // current key (objects)
  index: number; // current index (arrays)
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_OBJ = 123;
const CLOSE_OBJ = 125;
const OPEN_ARR = 91;
const CLOSE_ARR = 93;
const COMMA = 44;

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MINUS = 45;
const DIGIT_0 = 48;
const DIGIT_9 = 57;

/** Characters a JSON number literal is made of. */
function inNumber(c: number): boolean {
  return (c >= DIGIT_0 && c <= DIGIT_9) || c === MINUS || c === 43 /* + */ || c === 46 /* . */ || c === 101 /* e */ || c === 69 /* E */;
}

/** Scans text already known to be valid JSON (throws on what JSON.parse lets through and we refuse). */
function scan(text: string, maxDepth: number): { numbersExact: boolean } {
  const stack: Frame[] = [];
  const n = text.length;
  let numbersExact = true;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if ((c >= DIGIT_0 && c <= DIGIT_9) || c === MINUS) {
      let j = i + 1;
      while (j < n && inNumber(text.charCodeAt(j))) j++;
      if (numbersExact) {
        const literal = text.slice(i, j);
        numbersExact = String(Number(literal)) === literal;
      }
      i = j;
      continue;
    }
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      const raw = text.slice(i + 1, end);
      if (SURROGATE_ESCAPE.test(raw) && UNPAIRED_SURROGATE.test(JSON.parse(`"${raw}"`) as string)) {
        throw new BodyError('invalid_unicode', `string with an unpaired surrogate escape at ${pointer(stack, stack.length) || '/'}`, pointer(stack, stack.length));
      }
      if (top?.keys && top.expectKey) {
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.keys.has(key)) {
          throw new BodyError('duplicate_key', `duplicate key "${key}" in object at ${pointer(stack, stack.length - 1) || '/'}`, pointer(stack, stack.length - 1));
        }
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (stack.length >= maxDepth) throw new BodyError('too_deep', `JSON nests deeper than ${maxDepth} levels at ${pointer(stack, stack.length) || '/'}`);
      stack.push({ keys: c === OPEN_OBJ ? new Set() : undefined, expectKey: c === OPEN_OBJ, key: '', index: 0 });
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      stack.pop();
    } else if (c === COMMA) {
      const top = stack[stack.length - 1];
      if (top) {
        if (top.keys) top.expectKey = true;
        else top.index++;
      }
    }
    i++;
  }
  return { numbersExact };
}

/** Index of the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  for (;;) {
    const q = text.indexOf('"', j);
    // Count the backslashes right before the quote: an odd number escapes it.
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    j = q + 1;
  }
}

/** JSON pointer of the container stack[depth], built from the current key or index of each frame above it. */
function pointer(stack: Frame[], depth: number): string {
  let out = '';
  for (let d = 0; d < depth; d++) {
    const f = stack[d] as Frame;
    const seg = f.keys ? f.key : String(f.index);
    out += `/${seg.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  }
  return out;
}
