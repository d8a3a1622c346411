import type { CheckResponse, HeaderValueOption, ProtoStruct, ProtoValue } from './check-types.js';

/**
 * CheckResponse → protobuf bytes, written directly for the handful of message types an answer uses.
 * Every check ends here; the generic reflection-based encoder spent ~10 µs per answer on the field
 * bookkeeping of nested headers and Struct values, this writes them in one pass into a reused buffer.
 * Field numbers are those of protos/ (envoy.service.auth.v3, envoy.config.core.v3, google.rpc,
 * google.protobuf.Struct); test/unit/authz/check-response-encoder.test.ts decodes its output with the
 * generic codec and compares.
 */

/** Wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;

class ProtoWriter {
  private buf = Buffer.allocUnsafe(4096);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  varint(n: number): void {
    this.ensure(10);
    // Values here are non-negative and below 2^31 (codes, enum values, lengths).
    while (n > 0x7f) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Starts a length-delimited field: one byte is reserved for the length, which end() fills in. */
  begin(field: number): number {
    this.tag(field, LEN);
    this.ensure(1);
    return this.pos++;
  }

  end(lengthAt: number): void {
    const length = this.pos - lengthAt - 1;
    if (length < 0x80) {
      this.buf[lengthAt] = length;
      return;
    }
    // Longer than one varint byte: move the content right to make room for the length's other bytes.
    let extra = 0;
    for (let n = length >>> 7; n > 0; n >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copy(this.buf, lengthAt + 1 + extra, lengthAt + 1, this.pos);
    const end = this.pos + extra;
    this.pos = lengthAt;
    this.varint(length);
    this.pos = end;
  }

  string(field: number, value: string): void {
    const at = this.begin(field);
    this.ensure(value.length * 3);
    this.pos += value.length < 64 ? this.shortString(value) : this.buf.write(value, this.pos, 'utf8');
    this.end(at);
  }

  /** Short strings (header names, ids) are mostly ASCII: copying the bytes beats a native call. */
  private shortString(value: string): number {
    const { buf } = this;
    const start = this.pos;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return buf.write(value, start, 'utf8');
      buf[start + i] = c;
    }
    return value.length;
  }

  /** A scalar field is written whenever it is set, even to its default, as the generic encoder does. */
  optionalString(field: number, value: string | undefined): void {
    if (value !== undefined) this.string(field, value);
  }

  optionalVarint(field: number, value: number | undefined): void {
    if (value !== undefined) {
      this.tag(field, VARINT);
      this.varint(value);
    }
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// One writer for the process: encoding is synchronous, so calls never interleave.
const writer = new ProtoWriter();

export function encodeCheckResponse(response: CheckResponse): Buffer {
  const w = writer;
  w.reset();
  // CheckResponse.status = 1: google.rpc.Status { code = 1; message = 2 }
  const status = w.begin(1);
  w.optionalVarint(1, response.status.code);
  w.optionalString(2, response.status.message);
  w.end(status);
  if (response.denied_response) {
    // denied_response = 2: DeniedHttpResponse { status = 1 (HttpStatus { code = 1 }); headers = 2; body = 3 }
    const d = response.denied_response;
    const at = w.begin(2);
    const httpStatus = w.begin(1);
    w.optionalVarint(1, d.status.code);
    w.end(httpStatus);
    headers(w, 2, d.headers);
    w.optionalString(3, d.body);
    w.end(at);
  }
  if (response.ok_response) {
    // ok_response = 3: OkHttpResponse { headers = 2; headers_to_remove = 5; response_headers_to_add = 6;
    // query_parameters_to_set = 7 (QueryParameter { key = 1; value = 2 }); query_parameters_to_remove = 8 }
    const ok = response.ok_response;
    const at = w.begin(3);
    headers(w, 2, ok.headers);
    for (const name of ok.headers_to_remove) w.string(5, name);
    headers(w, 6, ok.response_headers_to_add);
    for (const p of ok.query_parameters_to_set) {
      const q = w.begin(7);
      w.optionalString(1, p.key);
      w.optionalString(2, p.value);
      w.end(q);
    }
    for (const name of ok.query_parameters_to_remove) w.string(8, name);
    w.end(at);
  }
  if (response.dynamic_metadata) {
    const at = w.begin(4);
    structFields(w, response.dynamic_metadata);
    w.end(at);
  }
  return w.bytes();
}

/** HeaderValueOption { header = 1 (HeaderValue { key = 1; value = 2 }); append_action = 3 } */
function headers(w: ProtoWriter, field: number, options: HeaderValueOption[]): void {
  for (const o of options) {
    const at = w.begin(field);
    const header = w.begin(1);
    w.optionalString(1, o.header.key);
    w.optionalString(2, o.header.value);
    w.end(header);
    w.optionalVarint(3, o.append_action);
    w.end(at);
  }
}

/** google.protobuf.Struct { map<string, Value> fields = 1 }: each entry { key = 1; value = 2 }. */
function structFields(w: ProtoWriter, struct: ProtoStruct): void {
  const fields = struct.fields ?? {};
  for (const key of Object.keys(fields)) {
    const entry = w.begin(1);
    w.optionalString(1, key);
    const value = w.begin(2);
    valueFields(w, fields[key] as ProtoValue);
    w.end(value);
    w.end(entry);
  }
}

/**
 * google.protobuf.Value: a oneof { null_value = 1; number_value = 2; string_value = 3; bool_value = 4;
 * struct_value = 5; list_value = 6 (ListValue { repeated Value values = 1 }) }. A oneof member is written
 * even when it holds its type's default (0, "", false): its presence is the value's kind.
 */
function valueFields(w: ProtoWriter, v: ProtoValue): void {
  if (v.stringValue !== undefined) w.string(3, v.stringValue);
  else if (v.numberValue !== undefined) w.double(2, v.numberValue);
  else if (v.boolValue !== undefined) {
    w.tag(4, VARINT);
    w.varint(v.boolValue ? 1 : 0);
  } else if (v.structValue !== undefined) {
    const at = w.begin(5);
    structFields(w, v.structValue);
    w.end(at);
  } else if (v.listValue !== undefined) {
    const at = w.begin(6);
    for (const item of v.listValue.values ?? []) {
      const i = w.begin(1);
      valueFields(w, item);
      w.end(i);
    }
    w.end(at);
  } else {
    w.tag(1, VARINT);
    w.varint(0);
  }
}
