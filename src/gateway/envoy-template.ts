import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { McpServerDefinition } from '../catalog/mcp-servers.js';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { REPO_ROOT } from '../shared/repo-paths.js';
import { insertMcpServers } from './mcp-envoy-config.js';

/** The values envoy/toolgate.yaml needs. Everything else in that file is plain Envoy config. */
export interface EnvoyTemplateValues {
  ADMIN_PORT: number;
  LISTEN_ADDRESS: string;
  HTTP_PORT: number;
  MTLS_PORT: number;
  AUTHZ_HOST: string;
  AUTHZ_PORT: number;
  AUTHZ_TIMEOUT: string;
  EXECUTOR_HOST: string;
  EXECUTOR_PORT: number;
  /** The executor replicas for /mcp (session affinity): a name resolving to every replica. Default: EXECUTOR_HOST. */
  EXECUTOR_MCP_HOST?: string;
  MAX_REQUEST_BYTES: number;
  TLS_CERT_PATH: string;
  TLS_KEY_PATH: string;
  CLIENT_CA_PATH: string;
  JWKS_PATH: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  ACCESS_LOG_PATH: string;
  /** Active gRPC health checks of the authz replicas (off only for authz servers without grpc.health.v1, e.g. in benchmarks). */
  AUTHZ_HEALTH_CHECKS?: boolean;
  /** mTLS on the hop to the authz server: Envoy's client certificate and the internal CA (see internal-credentials.ts). */
  AUTHZ_TLS?: boolean;
  AUTHZ_TLS_NAME?: string;
  INTERNAL_CA_PATH?: string;
  INTERNAL_CLIENT_CERT_PATH?: string;
  INTERNAL_CLIENT_KEY_PATH?: string;
  /** Several authz replicas by address (one machine); in a cluster one headless-Service name resolves to all. */
  AUTHZ_ENDPOINTS?: { host: string; port: number }[];
  /** Overload and request limits (defaults: ENVOY_LIMIT_DEFAULTS). */
  MAX_HEAP_BYTES?: number;
  MAX_DOWNSTREAM_CONNECTIONS?: number;
  REQUEST_HEADERS_TIMEOUT?: string;
  REQUEST_TIMEOUT?: string;
  /**
   * What Envoy reads from an agent's connection ahead of its filters (listener per_connection_buffer_limit_bytes):
   * all a request refused at its headers can make Envoy hold. Bodies checked by ext_authz are still buffered
   * up to MAX_REQUEST_BYTES (the virtual host's request_body_buffer_limit).
   */
  CONNECTION_BUFFER_BYTES?: number;
  /**
   * This gateway's MCP resource (RFC 8707/9728): the audience MCP tokens must carry, named in the protected
   * resource metadata. Default: http://<listen address>:<HTTP port>/mcp (fine on one machine).
   */
  MCP_RESOURCE_URL?: string;
  /** Envoy's OpenTelemetry tracer, exporting to the collector below (blocks marked `#if TRACING`). */
  TRACING?: boolean;
  OTEL_COLLECTOR_HOST?: string;
  OTEL_COLLECTOR_PORT?: number;
  /** Upstream MCP servers (src/catalog/mcp-servers.yaml): a route and a cluster each. */
  MCP_SERVERS?: readonly McpServerDefinition[];
  /** Approvals (issue 18): the /approvals/ route to the authz process's approvers' port, and the approvers' token audience. */
  APPROVALS?: boolean;
  APPROVALS_HOST?: string;
  APPROVALS_PORT?: number;
  APPROVALS_AUDIENCE?: string;
}

/**
 * Envoy's own bounds, unless a deployment sets them: a heap budget for the overload manager (Helm derives it
 * from the pod's memory limit), agent connections, and how long a client may take to send headers and its
 * whole request (a 2 MiB body at a modest 100 KB/s takes 20 s).
 */
export const ENVOY_LIMIT_DEFAULTS = {
  MAX_HEAP_BYTES: 1024 * 1024 * 1024,
  MAX_DOWNSTREAM_CONNECTIONS: 10_000,
  REQUEST_HEADERS_TIMEOUT: '10s',
  REQUEST_TIMEOUT: '60s',
  CONNECTION_BUFFER_BYTES: 32 * 1024,
} as const;

export const ENVOY_TEMPLATE_PATH = join(REPO_ROOT, 'envoy', 'toolgate.yaml');

/**
 * Keeps the lines between `#if NAME` and `#endif NAME` only when NAME is true, then substitutes every
 * ${NAME}; a placeholder without a value is an error, never an empty string.
 */
export function renderTemplate(template: string, values: Record<string, string | number | boolean>): string {
  const missing = new Set<string>();
  const kept: string[] = [];
  const open: { name: string; keep: boolean }[] = [];
  for (const line of template.split('\n')) {
    const cond = /^\s*#(if|endif) ([A-Z0-9_]+)\s*$/.exec(line);
    if (cond?.[1] === 'if') open.push({ name: cond[2] as string, keep: values[cond[2] as string] === true });
    else if (cond?.[1] === 'endif') {
      if (open.pop()?.name !== cond[2]) throw new Error(`envoy template: unbalanced #endif ${cond[2]}`);
    } else if (open.every((o) => o.keep)) kept.push(line);
  }
  if (open.length > 0) throw new Error(`envoy template: #if ${open[0]?.name} is never closed`);
  const out = kept.join('\n').replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) {
      missing.add(name);
      return '';
    }
    return String(v);
  });
  if (missing.size > 0) throw new Error(`envoy template: no value for ${[...missing].join(', ')}`);
  return out;
}

export async function renderEnvoyConfig(values: EnvoyTemplateValues, templatePath = ENVOY_TEMPLATE_PATH): Promise<string> {
  const { AUTHZ_ENDPOINTS: endpoints, MCP_SERVERS, ...scalars } = values;
  const host = values.LISTEN_ADDRESS === '0.0.0.0' ? '127.0.0.1' : values.LISTEN_ADDRESS;
  const resource = values.MCP_RESOURCE_URL ?? `http://${host}:${values.HTTP_PORT}/mcp`;
  const withMcp = { ...ENVOY_LIMIT_DEFAULTS, EXECUTOR_MCP_HOST: values.EXECUTOR_HOST, ...scalars, MCP_RESOURCE_URL: resource, MCP_RESOURCE_METADATA_URL: protectedResourceMetadataUrl(resource) };
  const rendered = renderTemplate(await readFile(templatePath, 'utf8'), withMcp as unknown as Record<string, string | number | boolean>);
  const withServers = insertMcpServers(rendered, MCP_SERVERS ?? []);
  return endpoints && endpoints.length > 0 ? withAuthzEndpoints(withServers, endpoints) : withServers;
}

/** Replaces the authz cluster's one endpoint (AUTHZ_HOST:AUTHZ_PORT) with several; comments and anchors stay. */
function withAuthzEndpoints(config: string, endpoints: { host: string; port: number }[]): string {
  const doc = parseDocument(config);
  const clusters = doc.getIn(['static_resources', 'clusters']) as YAMLSeq<YAMLMap>;
  const index = clusters.items.findIndex((c) => c.get('name') === 'toolgate_authz');
  if (index === -1) throw new Error('envoy template: no toolgate_authz cluster to put authz endpoints in');
  doc.setIn(
    ['static_resources', 'clusters', index, 'load_assignment', 'endpoints', 0, 'lb_endpoints'],
    doc.createNode(endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } } }))),
  );
  return doc.toString();
}

/** RFC 9728 section 3.1: the well-known path is inserted between the resource's origin and its path. */
export function protectedResourceMetadataUrl(resource: string): string {
  const u = new URL(resource);
  return `${u.origin}/.well-known/oauth-protected-resource${u.pathname === '/' ? '' : u.pathname}`;
}
