import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BuiltinError, type BuiltinTable } from './builtin.js';
import { isObject, type Value } from './json-values.js';

/**
 * json.verify_schema / json.match_schema with Ajv (JSON Schema draft-07, the draft OPA's gojsonschema assumes
 * without "$schema"). Errors are reshaped into gojsonschema's {error, type, field, desc} for the keywords
 * policies use; wording for rarer keywords may differ from OPA's.
 */

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

function loadJson(v: Value | undefined): unknown {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v);
    } catch {
      throw new BuiltinError('invalid JSON string');
    }
  }
  if (isObject(v) || Array.isArray(v)) return v;
  throw new BuiltinError('wrong type, expected string or object');
}

const PRIMITIVE_TYPES = ['array', 'boolean', 'integer', 'number', 'null', 'object', 'string'];
const SCHEMA_MAPS = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'items'];
const SCHEMA_ONE = ['items', 'additionalItems', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];

/** gojsonschema's first check of a schema, with its message: every `type` names JSON Schema primitive types. */
function checkTypes(schema: unknown): void {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return;
  const s = schema as Record<string, unknown>;
  for (const t of typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? s.type : []) {
    if (typeof t === 'string' && !PRIMITIVE_TYPES.includes(t)) {
      throw new BuiltinError(`has a primitive type that is NOT VALID -- given: /${t}/ Expected valid values are:[${PRIMITIVE_TYPES.join(' ')}]`);
    }
  }
  for (const k of SCHEMA_MAPS) if (s[k] && typeof s[k] === 'object') for (const sub of Object.values(s[k] as object)) checkTypes(sub);
  for (const k of SCHEMA_LISTS) if (Array.isArray(s[k])) for (const sub of s[k] as unknown[]) checkTypes(sub);
  for (const k of SCHEMA_ONE) checkTypes(s[k]);
}

function compile(schema: unknown): ValidateFunction {
  const key = JSON.stringify(schema);
  let fn = compiled.get(key);
  if (!fn) {
    checkTypes(schema);
    try {
      fn = ajv.compile(schema as object);
    } catch (err) {
      throw new BuiltinError((err as Error).message);
    }
    if (compiled.size >= 128) compiled.clear();
    compiled.set(key, fn);
  }
  return fn;
}

function field(path: string): string {
  if (path === '') return '(root)';
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function describe(e: ErrorObject, doc: unknown): { type: string; field: string; desc: string } {
  const p = e.params as Record<string, unknown>;
  const at = field(e.instancePath);
  switch (e.keyword) {
    case 'type': {
      const given = jsonType(e.instancePath.split('/').slice(1).reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc));
      return { type: 'invalid_type', field: at, desc: `Invalid type. Expected: ${String(p.type).split(',').join(', ')}, given: ${given}` };
    }
    case 'required': {
      const prop = String(p.missingProperty);
      return { type: 'required', field: e.instancePath === '' ? prop : `${at}.${prop}`, desc: `${prop} is required` };
    }
    case 'enum':
      return { type: 'enum', field: at, desc: `${at} must be one of the following: ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}` };
    case 'const':
      return { type: 'const', field: at, desc: `${at} does not match: ${JSON.stringify(p.allowedValue)}` };
    case 'additionalProperties':
      return { type: 'additional_property_not_allowed', field: at, desc: `Additional property ${String(p.additionalProperty)} is not allowed` };
    case 'minimum':
      return { type: 'number_gte', field: at, desc: `Must be greater than or equal to ${String(p.limit)}` };
    case 'maximum':
      return { type: 'number_lte', field: at, desc: `Must be less than or equal to ${String(p.limit)}` };
    case 'exclusiveMinimum':
      return { type: 'number_gt', field: at, desc: `Must be greater than ${String(p.limit)}` };
    case 'exclusiveMaximum':
      return { type: 'number_lt', field: at, desc: `Must be less than ${String(p.limit)}` };
    case 'minLength':
      return { type: 'string_gte', field: at, desc: `String length must be greater than or equal to ${String(p.limit)}` };
    case 'maxLength':
      return { type: 'string_lte', field: at, desc: `String length must be less than or equal to ${String(p.limit)}` };
    case 'minItems':
      return { type: 'array_min_items', field: at, desc: `Array must have at least ${String(p.limit)} items` };
    case 'maxItems':
      return { type: 'array_max_items', field: at, desc: `Array must have at most ${String(p.limit)} items` };
    case 'pattern':
      return { type: 'pattern', field: at, desc: `Does not match pattern '${String(p.pattern)}'` };
    default:
      return { type: e.keyword, field: at, desc: e.message ?? e.keyword };
  }
}

export const jsonSchemaBuiltins: BuiltinTable = {
  'json.verify_schema': (a) => {
    try {
      compile(loadJson(a[0]));
      return [true, null];
    } catch (err) {
      return [false, `jsonschema: ${(err as Error).message}`];
    }
  },
  'json.match_schema': (a) => {
    const doc = loadJson(a[0]);
    const validate = compile(loadJson(a[1]));
    const valid = validate(doc) as boolean;
    // gojsonschema reports only the failed leaf keywords, not the aggregate ones (anyOf/oneOf report their own)
    const errors = (validate.errors ?? []).map((e) => {
      const d = describe(e, doc);
      return { error: `${d.field}: ${d.desc}`, type: d.type, field: d.field, desc: d.desc };
    });
    return [valid, errors];
  },
};
