import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { FIELD_SPEC_SCHEMA, RESERVED_FIELD_NAMES } from './catalog-schema.js';
import type { FieldSpec, PolicyFields } from './catalog-types.js';
import { ABSENT, resolveField } from './field-mapping.js';

/**
 * The upstream MCP servers a platform team puts behind the gateway, in one file (src/catalog/mcp-servers.yaml
 * by default, a sibling of the tool catalog). Read by the authz server (field mapping, upstream credentials)
 * and by the gateway's renderer and the Helm chart (one Envoy route and cluster per server).
 */
export interface UpstreamToolMapping {
  action?: FieldSpec;
  resource?: FieldSpec;
  namespace?: FieldSpec;
  fields: Record<string, FieldSpec>;
}

export interface UpstreamCredentials {
  /** The header toolgate presents upstream (e.g. `authorization`). */
  header: string;
  /** Where its value comes from: an environment variable of the authz server, or a file it reads at start. */
  value_env?: string;
  value_file?: string;
}

export interface McpServerDefinition {
  /** `/mcp/<name>` on the gateway; `toolgate` is reserved for toolgate's own tools. */
  name: string;
  /** The upstream's Streamable HTTP endpoint, e.g. http://kubernetes-mcp:8080/mcp. */
  url: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  /** Longest a request (a tool call, or a server stream between two events) may take. */
  timeout_seconds: number;
  connect_timeout_seconds: number;
  credentials?: UpstreamCredentials;
  /** How each upstream tool's arguments map to the flat fields policies read; unmapped tools get none. */
  tools: Record<string, UpstreamToolMapping>;
}

export class McpServersError extends Error {}

export const RESERVED_SERVER_NAME = 'toolgate';

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'servers'],
  properties: {
    apiVersion: { const: 'toolgate.dev/v1' },
    kind: { const: 'McpServers' },
    servers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url'],
        properties: {
          // A path segment and an Envoy cluster name suffix: keep it plain.
          name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$' },
          url: { type: 'string', pattern: '^https?://' },
          timeout_seconds: { type: 'integer', minimum: 1, maximum: 3600 },
          connect_timeout_seconds: { type: 'integer', minimum: 1, maximum: 60 },
          credentials: {
            type: 'object',
            additionalProperties: false,
            required: ['header'],
            properties: {
              header: { type: 'string', pattern: '^[A-Za-z0-9-]+$' },
              value_env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
              value_file: { type: 'string', minLength: 1 },
            },
            oneOf: [{ required: ['value_env'] }, { required: ['value_file'] }],
          },
          tools: {
            type: 'object',
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              properties: {
                action: FIELD_SPEC_SCHEMA,
                resource: FIELD_SPEC_SCHEMA,
                namespace: FIELD_SPEC_SCHEMA,
                fields: { type: 'object', additionalProperties: FIELD_SPEC_SCHEMA },
              },
            },
          },
        },
      },
    },
  },
} as const;

const validate = new Ajv2020({ allErrors: false, strict: false }).compile(SCHEMA);

export class McpServerRegistry {
  private readonly byName = new Map<string, McpServerDefinition>();

  constructor(servers: McpServerDefinition[]) {
    for (const s of servers) this.byName.set(s.name, s);
  }

  get(name: string): McpServerDefinition | undefined {
    return this.byName.get(name);
  }

  all(): McpServerDefinition[] {
    return [...this.byName.values()];
  }

  /** The flat fields of a call to an upstream tool, as the registry maps them ({} for an unmapped tool). */
  deriveFields(server: string, tool: string, args: Record<string, unknown>): PolicyFields {
    const mapping = this.byName.get(server)?.tools[tool];
    const out: PolicyFields = {};
    if (!mapping) return out;
    const set = (name: string, spec: FieldSpec | undefined): void => {
      if (spec === undefined) return;
      const v = resolveField(spec, args);
      if (v !== ABSENT) out[name] = v;
    };
    set('action', mapping.action);
    set('resource', mapping.resource);
    set('namespace', mapping.namespace);
    for (const [name, spec] of Object.entries(mapping.fields)) set(name, spec);
    return out;
  }
}

export const EMPTY_MCP_SERVERS = new McpServerRegistry([]);

export function parseMcpServers(yamlText: string, origin: string): McpServerRegistry {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch (err) {
    throw new McpServersError(`${origin}: not valid YAML: ${(err as Error).message}`);
  }
  if (!validate(doc)) {
    const problems = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`).join('; ');
    throw new McpServersError(`${origin}: invalid MCP server registry: ${problems}`);
  }
  const raw = (doc as { servers: Record<string, unknown>[] }).servers;
  const out: McpServerDefinition[] = [];
  const seen = new Set<string>();
  for (const s of raw) {
    const name = s.name as string;
    const where = `${origin}: server "${name}"`;
    if (name === RESERVED_SERVER_NAME) throw new McpServersError(`${where}: the name "${RESERVED_SERVER_NAME}" is reserved for toolgate's own tools`);
    if (seen.has(name)) throw new McpServersError(`${where}: duplicate server name`);
    seen.add(name);
    let url: URL;
    try {
      url = new URL(s.url as string);
    } catch {
      throw new McpServersError(`${where}: url "${String(s.url)}" is not a URL`);
    }
    if (url.search || url.hash || url.username || url.password) throw new McpServersError(`${where}: url must not carry a query, fragment or user info (credentials go under credentials:)`);
    const scheme = url.protocol === 'https:' ? 'https' : 'http';
    const tools: Record<string, UpstreamToolMapping> = {};
    for (const [tool, m] of Object.entries((s.tools ?? {}) as Record<string, Partial<UpstreamToolMapping>>)) {
      const fields = m.fields ?? {};
      for (const f of Object.keys(fields)) {
        if (RESERVED_FIELD_NAMES.has(f)) throw new McpServersError(`${where}: tool "${tool}" fields.${f} collides with a reserved input key`);
      }
      tools[tool] = { ...m, fields };
    }
    const def: McpServerDefinition = {
      name,
      url: url.toString(),
      scheme,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80,
      path: url.pathname || '/',
      timeout_seconds: (s.timeout_seconds as number | undefined) ?? 300,
      connect_timeout_seconds: (s.connect_timeout_seconds as number | undefined) ?? 2,
      tools,
    };
    if (s.credentials) def.credentials = s.credentials as UpstreamCredentials;
    out.push(def);
  }
  return new McpServerRegistry(out);
}

export async function loadMcpServersFile(path: string): Promise<McpServerRegistry> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new McpServersError(`cannot read MCP server registry ${path}: ${(err as Error).message}`);
  }
  return parseMcpServers(text, path);
}
