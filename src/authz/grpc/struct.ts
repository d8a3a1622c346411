import type { ProtoStruct, ProtoValue } from './check-types.js';

/** google.protobuf.Struct <-> plain JSON, the way protojson renders it (what OPA policies see). */
export function structToJson(struct: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = struct?.fields;
  if (!fields) return out;
  for (const key of Object.keys(fields)) out[key] = valueToJson(fields[key]);
  return out;
}

function valueToJson(value: ProtoValue | undefined): unknown {
  if (!value) return null;
  if (value.structValue !== undefined) return structToJson(value.structValue);
  if (value.listValue !== undefined) return (value.listValue.values ?? []).map(valueToJson);
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.numberValue !== undefined) return value.numberValue;
  if (value.boolValue !== undefined) return value.boolValue;
  return null;
}

export function jsonToStruct(obj: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v !== undefined) fields[key] = jsonToValue(v);
  }
  return { fields };
}

function jsonToValue(v: unknown): ProtoValue {
  if (v === null) return { nullValue: 0 };
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'number':
      return { numberValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'object':
      return Array.isArray(v)
        ? { listValue: { values: v.map(jsonToValue) } }
        : { structValue: jsonToStruct(v as Record<string, unknown>) };
    default:
      return { stringValue: String(v) };
  }
}
