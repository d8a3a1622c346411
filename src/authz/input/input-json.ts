import type { JsonObject } from './envoy-input.js';

/**
 * The OPA input as JSON bytes, for the engines (wasm memory, OPA's REST API).
 *
 * The tool's arguments stand in the input several times: REST `parsed_body` and `tool_call.arguments`; MCP
 * `parsed_body.params.arguments`, `mcp.params.arguments` and `tool_call.arguments`. They are written once:
 * the input is encoded with `null` in each of those places (the skeleton), and the arguments' JSON beside
 * it. The embedded engine parses the arguments once into wasm memory and places that one value at every
 * place (opa_value_add_path), so the policy sees the same input while the module's JSON parser reads the
 * arguments once instead of three or four times (at 64 KiB, parsing was the largest part of a check).
 * Engines that need one document (OPA's REST API) get the holes filled back in (`wholeInputJson`).
 *
 * The arguments' JSON is a REST call's own body bytes when they read back exactly (the body was strictly
 * validated: UTF-8, one JSON object, no duplicate keys, no unpaired surrogate escapes, every number written
 * as JavaScript writes it back: see sourceTextIsExact), else JSON.stringify of the parsed value. Places are
 * found by identity, never by content.
 */
export interface SharedJsonValue {
  /** The parsed arguments (compared by identity). */
  value: unknown;
  /** Their JSON text. */
  json: Buffer;
  /** The objects on the way to each place the value stands (the writer descends only into these). */
  containers: Set<unknown>;
}

/** Where the shared value stands: the offset of its `null` in the skeleton, and its path from the input's root. */
export interface InputHole {
  offset: number;
  path: string[];
}

export interface EncodedInput {
  /** The input's JSON; where `shared` is set, with `null` at each of its holes. */
  skeleton: Buffer;
  shared?: { json: Buffer; holes: InputHole[] };
  /** The length of the whole input's JSON (holes filled). */
  byteLength: number;
}

/** Below this, one JSON.stringify is cheaper than writing the input in pieces. */
export const SHARE_FROM_BYTES = 4096;
const NULL = 'null';

const utf8 = new TextEncoder();

export function encodeInputJson(input: JsonObject, shared: SharedJsonValue | undefined): EncodedInput {
  if (!shared || shared.json.length < SHARE_FROM_BYTES) {
    // TextEncoder gives the bytes their own ArrayBuffer, which the wasm engine can hand over without a copy.
    const bytes = utf8.encode(JSON.stringify(input));
    const skeleton = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { skeleton, byteLength: skeleton.length };
  }
  const holes: InputHole[] = [];
  let text = '';
  let flushed = 0;
  const chunks: Buffer[] = [];
  const writeObject = (obj: Record<string, unknown>, path: string[]): void => {
    text += '{';
    let first = true;
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      text += `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      if (value === shared.value) {
        chunks.push(Buffer.from(text));
        flushed += chunks[chunks.length - 1]!.length;
        text = NULL;
        holes.push({ offset: flushed, path: [...path, key] });
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && shared.containers.has(value)) {
        writeObject(value as Record<string, unknown>, [...path, key]);
      } else {
        text += JSON.stringify(value);
      }
    }
    text += '}';
  };
  writeObject(input, []);
  chunks.push(Buffer.from(text));
  const skeleton = Buffer.concat(chunks);
  if (holes.length === 0) return { skeleton, byteLength: skeleton.length };
  return { skeleton, shared: { json: shared.json, holes }, byteLength: skeleton.length + holes.length * (shared.json.length - NULL.length) };
}

/** One JSON document: the skeleton with the shared value written at each of its holes. */
export function wholeInputJson(e: EncodedInput): Buffer {
  if (!e.shared) return e.skeleton;
  const parts: Buffer[] = [];
  let at = 0;
  for (const hole of e.shared.holes) {
    parts.push(e.skeleton.subarray(at, hole.offset), e.shared.json);
    at = hole.offset + NULL.length;
  }
  parts.push(e.skeleton.subarray(at));
  return Buffer.concat(parts, e.byteLength);
}
