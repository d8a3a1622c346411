import type { InputPathNode, InputPaths } from '../policy/input-paths.js';
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

/**
 * `paths`: only the parts of the input the active bundle can read (src/authz/policy/input-paths.ts); the
 * others are left out of the bytes (the input object itself, which the decision log records, is untouched).
 */
export function encodeInputJson(input: JsonObject, raw: RawJsonValue | InputSplices | undefined, paths: InputPaths = 'all'): Buffer {
  const splices = splicesOf(input, raw);
  if (!splices && paths === 'all') {
    // TextEncoder gives the bytes their own ArrayBuffer, which the wasm engine can hand over without a copy.
    const bytes = utf8.encode(JSON.stringify(input));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return new InputWriter(splices).write(input, paths === 'all' ? 'whole' : paths);
}

/** REST's single raw value or MCP's splices, as splices; none when too small to be worth assembling. */
function splicesOf(input: JsonObject, raw: RawJsonValue | InputSplices | undefined): InputSplices | undefined {
  if (!raw) return undefined;
  if ('values' in raw) {
    let total = 0;
    for (const b of raw.values.values()) total += b.length;
    return total < SPLICE_FROM_BYTES ? undefined : raw;
  }
  if (raw.json.length < SPLICE_FROM_BYTES) return undefined;
  // REST: the arguments stand at the top level (parsed_body) and one level down in tool_call.
  const toolCall = input.tool_call;
  return { values: new Map([[raw.value, raw.json]]), containers: new Set(isObject(toolCall) && toolCall.arguments === raw.value ? [toolCall] : []) };
}

class InputWriter {
  private readonly chunks: Buffer[] = [];
  private text = '';

  constructor(private readonly splices: InputSplices | undefined) {}

  write(input: JsonObject, node: InputPathNode): Buffer {
    this.writeObject(input, node);
    this.flush();
    if (this.chunks.length === 1) return this.chunks[0] as Buffer;
    return Buffer.concat(this.chunks);
  }

  private writeObject(obj: Record<string, unknown>, node: InputPathNode): void {
    this.text += '{';
    let first = true;
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      const child = node === 'whole' ? 'whole' : node.get(key);
      if (!child) continue;
      this.text += `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      this.writeValue(value, child);
    }
    this.text += '}';
  }

  private writeValue(value: unknown, node: InputPathNode): void {
    // Where only some keys are needed, leaving the others out beats reusing the whole value's bytes.
    if (node !== 'whole' && isObject(value)) {
      this.writeObject(value, node);
      return;
    }
    const spliced = this.splices?.values.get(value);
    if (spliced) {
      this.flush();
      this.chunks.push(spliced);
    } else if (isObject(value) && this.splices?.containers.has(value)) {
      this.writeObject(value, node);
    } else {
      this.text += JSON.stringify(value);
    }
  }

  private flush(): void {
    if (this.text) this.chunks.push(Buffer.from(this.text));
    this.text = '';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
