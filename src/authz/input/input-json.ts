import type { JsonObject } from './envoy-input.js';

/**
 * The OPA input as JSON bytes, for the engines (wasm memory, OPA's REST API). The tool arguments appear
 * in the input twice (`parsed_body` and `tool_call.arguments`) and are, for a REST call, exactly the request
 * body: those two values are written as the body's own bytes instead of being serialised again. The body
 * was strictly validated (UTF-8, one JSON object, no duplicate keys, no unpaired surrogate escapes, every
 * number written as JavaScript writes it back: see sourceTextIsExact) before it was parsed, so its bytes are
 * the JSON of the parsed value. Substitution is by position and identity, never by content.
 */
export interface RawJsonValue {
  /** The parsed value (compared by identity). */
  value: unknown;
  /** Its JSON text, as received. */
  json: Buffer;
}

/** Below this, one JSON.stringify is cheaper than assembling chunks. */
const SPLICE_FROM_BYTES = 4096;

const utf8 = new TextEncoder();

/**
 * Several values spliced at once (MCP: the JSON-RPC message as received for `parsed_body`, and the tool's
 * arguments serialised once for both `mcp.params.arguments` and `tool_call.arguments`). `containers` are the
 * objects the writer descends into to find them; every other value is serialised whole.
 */
export interface InputSplices {
  values: Map<unknown, Buffer>;
  containers: Set<unknown>;
}

export function encodeInputJson(input: JsonObject, raw: RawJsonValue | InputSplices | undefined): Buffer {
  if (raw && 'values' in raw) return encodeSpliced(input, raw);
  if (!raw || raw.json.length < SPLICE_FROM_BYTES) {
    // TextEncoder gives the bytes their own ArrayBuffer, which the wasm engine can hand over without a copy.
    const bytes = utf8.encode(JSON.stringify(input));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const chunks: Buffer[] = [];
  let text = '';
  const flush = (): void => {
    if (text) chunks.push(Buffer.from(text));
    text = '';
  };
  // The input's own fields, and one level down in tool_call, where the arguments stand again.
  const writeObject = (obj: Record<string, unknown>, topLevel: boolean): void => {
    text += '{';
    let first = true;
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      text += `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      if (value === raw.value) {
        flush();
        chunks.push(raw.json);
      } else if (topLevel && key === 'tool_call' && isObject(value) && value.arguments === raw.value) {
        writeObject(value, false);
      } else {
        text += JSON.stringify(value);
      }
    }
    text += '}';
  };
  writeObject(input, true);
  flush();
  return Buffer.concat(chunks);
}

function encodeSpliced(input: JsonObject, s: InputSplices): Buffer {
  let total = 0;
  for (const b of s.values.values()) total += b.length;
  if (total < SPLICE_FROM_BYTES) return encodeInputJson(input, undefined);
  const chunks: Buffer[] = [];
  let text = '';
  const flush = (): void => {
    if (text) chunks.push(Buffer.from(text));
    text = '';
  };
  const writeObject = (obj: Record<string, unknown>): void => {
    text += '{';
    let first = true;
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      text += `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      const spliced = s.values.get(value);
      if (spliced) {
        flush();
        chunks.push(spliced);
      } else if (isObject(value) && s.containers.has(value)) {
        writeObject(value);
      } else {
        text += JSON.stringify(value);
      }
    }
    text += '}';
  };
  writeObject(input);
  flush();
  return Buffer.concat(chunks);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
