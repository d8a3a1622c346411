import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CATALOG_SCHEMA, RESERVED_FIELD_NAMES } from './catalog-schema.js';
import type { ArgumentError, FieldSpec, PolicyFields, ToolAnnotations, ToolDefinition, ToolExecution } from './catalog-types.js';
import { ABSENT, resolveField } from './field-mapping.js';

export type { ArgumentError, FieldSpec, PolicyFields, ToolAnnotations, ToolDefinition, ToolExecution } from './catalog-types.js';

/** A catalog that cannot be used; the message names the file, the tool and the offending key. */
export class CatalogError extends Error {}

const DEFAULT_EXECUTION: Omit<ToolExecution, 'timeout_seconds'> = {
  max_output_bytes: 1024 * 1024,
  network: 'none',
  rbac: [],
  resources: { cpu: '500m', memory: '256Mi' },
};

/**
 * The tool catalog, shared by the authz server (input mapping) and the executor (validation, execution).
 * Argument validators are compiled once at load; lookups and validation on the hot path allocate little.
 */
export class ToolCatalog {
  private readonly tools = new Map<string, ToolDefinition>();
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(tools: ToolDefinition[], validators: Map<string, ValidateFunction>) {
    for (const t of tools) this.tools.set(t.name, t);
    this.validators = validators;
  }

  get(name: string): ToolDefinition | undefined {
    return this.tools.get(name);
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  all(): ToolDefinition[] {
    return [...this.tools.values()];
  }

  validateArguments(tool: ToolDefinition, args: unknown): ArgumentError[] {
    const validate = this.validators.get(tool.name);
    if (!validate) return [{ path: '', message: `tool "${tool.name}" is not in this catalog` }];
    if (validate(args)) return [];
    return (validate.errors ?? []).map(toArgumentError);
  }

  deriveFields(tool: ToolDefinition, args: Record<string, unknown>): PolicyFields {
    const out: PolicyFields = {};
    const set = (name: string, spec: FieldSpec | undefined): void => {
      if (spec === undefined) return;
      const v = resolveField(spec, args);
      if (v !== ABSENT) out[name] = v;
    };
    set('action', tool.action);
    set('resource', tool.resource);
    set('namespace', tool.namespace);
    for (const [name, spec] of Object.entries(tool.fields)) set(name, spec);
    return out;
  }
}

function toArgumentError(e: ErrorObject): ArgumentError {
  const p = e.params as Record<string, unknown>;
  let path = e.instancePath;
  if (e.keyword === 'required' && typeof p.missingProperty === 'string') path += `/${escape(p.missingProperty)}`;
  if (e.keyword === 'additionalProperties' && typeof p.additionalProperty === 'string') {
    return { path: `${path}/${escape(p.additionalProperty)}`, message: 'is not an allowed argument' };
  }
  return { path, message: e.message ?? e.keyword };
}

function escape(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

const catalogValidator = new Ajv2020({ allErrors: true, strict: false }).compile(CATALOG_SCHEMA);

export function parseToolCatalog(yamlText: string, origin: string): ToolCatalog {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch (err) {
    throw new CatalogError(`${origin}: not valid YAML: ${(err as Error).message}`);
  }
  if (!catalogValidator(doc)) {
    const problems = (catalogValidator.errors ?? []).slice(0, 5).map((e) => describeCatalogError(doc, e)).join('; ');
    throw new CatalogError(`${origin}: invalid tool catalog: ${problems}`);
  }
  const raw = (doc as { tools: Record<string, unknown>[] }).tools;
  // Arguments are validated strictly: unknown keywords or formats in a tool's schema are catalog errors.
  // Validation stops at the first error: collecting all of them let one body (a MiB of unknown keys) cost
  // the authz server's event loop most of a second and produce a deny body of megabytes.
  const ajv = new Ajv2020({ allErrors: false, strict: true, validateFormats: true });
  const tools: ToolDefinition[] = [];
  const validators = new Map<string, ValidateFunction>();
  for (const t of raw) {
    const name = t.name as string;
    const where = `${origin}: tool "${name}"`;
    if (validators.has(name)) throw new CatalogError(`${where}: duplicate tool name`);
    const fields = (t.fields ?? {}) as Record<string, FieldSpec>;
    for (const f of Object.keys(fields)) {
      if (RESERVED_FIELD_NAMES.has(f)) throw new CatalogError(`${where}: fields.${f} collides with a reserved input key`);
    }
    const inputSchema = t.input_schema as Record<string, unknown>;
    try {
      validators.set(name, ajv.compile(inputSchema));
    } catch (err) {
      throw new CatalogError(`${where}: input_schema does not compile: ${(err as Error).message}`);
    }
    const outputSchema = t.output_schema as Record<string, unknown> | undefined;
    if (outputSchema) {
      try {
        ajv.compile(outputSchema);
      } catch (err) {
        throw new CatalogError(`${where}: output_schema does not compile: ${(err as Error).message}`);
      }
    }
    const execution = { ...DEFAULT_EXECUTION, ...(t.execution as Partial<ToolExecution>) } as ToolExecution;
    if (execution.rbac.length > 0 && !execution.service_account) {
      throw new CatalogError(`${where}: execution.rbac needs execution.service_account`);
    }
    const def: ToolDefinition = {
      name,
      description: t.description as string,
      action: t.action as FieldSpec,
      resource: t.resource as FieldSpec,
      fields,
      inputSchema,
      execution,
    };
    if (t.namespace !== undefined) def.namespace = t.namespace as FieldSpec;
    if (typeof t.title === 'string') def.title = t.title;
    if (t.annotations) def.annotations = t.annotations as ToolAnnotations;
    if (typeof t.cost === 'number') def.cost = t.cost;
    if (outputSchema) def.outputSchema = outputSchema;
    tools.push(def);
  }
  return new ToolCatalog(tools, validators);
}

function describeCatalogError(doc: unknown, e: ErrorObject): string {
  const m = /^\/tools\/(\d+)(.*)$/.exec(e.instancePath);
  if (m) {
    const tool = (doc as { tools: { name?: unknown }[] }).tools[Number(m[1])];
    const name = typeof tool?.name === 'string' ? tool.name : `#${m[1]}`;
    const key = (m[2] ?? '').slice(1).replaceAll('/', '.');
    const extra = e.keyword === 'additionalProperties' ? ` "${String((e.params as Record<string, unknown>).additionalProperty)}"` : '';
    return `tool "${name}"${key ? ` ${key}` : ''}: ${e.message ?? e.keyword}${extra}`;
  }
  return `${e.instancePath || '/'}: ${e.message ?? e.keyword}`;
}

export async function loadToolCatalogFile(path: string): Promise<ToolCatalog> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CatalogError(`cannot read tool catalog ${path}: ${(err as Error).message}`);
  }
  return parseToolCatalog(text, path);
}
