import { Ajv } from 'ajv';
import { STORE_CONFIG_SCHEMA, StoreConfigError, resolveStoreConfig, type StoreConfig } from '../shared/store/store-config.js';
import { AUDIT_CONFIG_SCHEMA, resolveAuditConfig, type AuditConfig } from '../audit/audit-config.js';
import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The executor's configuration file (YAML). Relative paths resolve against the file's directory. */
export interface ExecutorConfig {
  http: { address: string };
  ops: { address: string };
  catalog: string;
  max_in_flight: number;
  /**
   * Calls one agent may have running at once, beside max_in_flight, so that one agent cannot take every
   * slot (default: a quarter of max_in_flight, at least 1); `max_in_flight_by_agent` sets it per agent id.
   */
  max_in_flight_per_agent: number;
  max_in_flight_by_agent: Record<string, number>;
  /** Must equal Envoy's with_request_body.max_request_bytes: both sides then accept exactly the same bodies. */
  max_body_bytes: number;
  /**
   * Outcomes of calls with an Idempotency-Key, kept for their retries: how long, how many, how many bytes in
   * all (their JSON). Calls without a key keep nothing once answered: no retry can name them.
   */
  idempotency: { retain_seconds: number; max_entries: number; max_bytes: number };
  runner: LocalRunnerConfig | KubernetesRunnerConfig;
  /** Hash-chained audit trail of every call run (JSON lines). */
  audit?: AuditConfig;
  /**
   * The key shared with the authz server (same file content): a call runs only with its attestation of the
   * decision and the body (see shared/decision-attestation.ts). Required: headers alone prove nothing.
   */
  decision_key_file: string;
  /** The MCP server at /mcp: web origins allowed to call it besides loopback ones (DNS-rebinding protection). */
  mcp: { allowed_origins: string[] };
  /** The store the authz servers keep input.history in: the executor ends each call's in-flight entry there. */
  store?: StoreConfig;
}

export interface LocalRunnerConfig {
  kind: 'local';
  /** Sandboxes started ahead of calls (docs/execution.md "The sandbox pool"); absent: none. */
  pool?: LocalPoolConfig;
}

export interface LocalPoolConfig {
  /** Sandboxes kept waiting per tool of the catalog (0: none). */
  size: number;
  /** Per-tool sizes overriding `size` (0: no pool for that tool); each name must be in the catalog. */
  tools: Record<string, number>;
  /** Bound on sandboxes waiting over all tools (each is an idle Node process of ~40 MB). */
  max_total: number;
}

export interface KubernetesRunnerConfig {
  kind: 'kubernetes';
  namespace: string;
  image: string;
  /** The tool runner's command inside the image. */
  command: string[];
  /**
   * Base URL at which Jobs reach this executor to report results. It must reach this very instance (the call
   * waits in its memory), not a Service that balances across replicas. It may name environment variables as
   * `${NAME}` (NAME: letters, digits and '_', not starting with a digit), replaced by their values when the
   * config is loaded; no other `$` syntax is interpreted and there is no escape. In a cluster:
   * `http://${POD_IP}:9292`, with POD_IP set from the downward API (status.podIP); an IPv6 address standing as
   * the host is bracketed. A named variable that is unset or empty stops the executor at start. After loading,
   * this holds the expanded URL.
   */
  callback_url: string;
  /**
   * host:port where the result channel listens on its own, apart from the agent-facing port (http.address),
   * so that tool pods reach only it. Omitted: the result channel is a route on http.address.
   */
  callback_address?: string;
  /**
   * Where Jobs post their results: a Service that reaches any executor replica (default: callback_url).
   * Whichever replica receives a result stores it with the Job, so the result still lands, and every replica
   * waiting for that call reads it, when the replica that started the Job is gone. Same `${NAME}` expansion.
   */
  result_url: string;
  ttl_seconds_after_finished: number;
  default_service_account: string;
  /** Omit in a cluster (in-cluster config); a path for running outside one. */
  kubeconfig?: string;
  otel_exporter_otlp_endpoint?: string;
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['catalog', 'decision_key_file'],
  properties: {
    decision_key_file: { type: 'string', minLength: 1 },
    store: STORE_CONFIG_SCHEMA,
    mcp: { type: 'object', additionalProperties: false, properties: { allowed_origins: { type: 'array', items: { type: 'string', pattern: '^https?://[^/]+$' } } } },
    http: { type: 'object', additionalProperties: false, properties: { address: { type: 'string' } } },
    ops: { type: 'object', additionalProperties: false, properties: { address: { type: 'string' } } },
    catalog: { type: 'string', minLength: 1 },
    max_in_flight: { type: 'integer', minimum: 1 },
    max_in_flight_per_agent: { type: 'integer', minimum: 1 },
    max_in_flight_by_agent: { type: 'object', additionalProperties: { type: 'integer', minimum: 1 } },
    max_body_bytes: { type: 'integer', minimum: 1024 },
    audit: AUDIT_CONFIG_SCHEMA,
    idempotency: {
      type: 'object',
      additionalProperties: false,
      properties: { retain_seconds: { type: 'integer', minimum: 1 }, max_entries: { type: 'integer', minimum: 1 }, max_bytes: { type: 'integer', minimum: 0 } },
    },
    runner: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: {
            kind: { const: 'local' },
            pool: {
              type: 'object',
              additionalProperties: false,
              properties: {
                size: { type: 'integer', minimum: 0, maximum: 16 },
                tools: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 16 } },
                max_total: { type: 'integer', minimum: 1, maximum: 256 },
              },
            },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'namespace', 'image', 'callback_url'],
          properties: {
            kind: { const: 'kubernetes' },
            namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
            image: { type: 'string', minLength: 1 },
            command: { type: 'array', items: { type: 'string' }, minItems: 1 },
            callback_url: { type: 'string', pattern: '^https?://' },
            callback_address: { type: 'string', minLength: 1 },
            result_url: { type: 'string', pattern: '^https?://' },
            ttl_seconds_after_finished: { type: 'integer', minimum: 0 },
            default_service_account: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
            kubeconfig: { type: 'string' },
            otel_exporter_otlp_endpoint: { type: 'string' },
          },
        },
      ],
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

export class ExecutorConfigError extends Error {}

/** `env`: where callback_url's `${NAME}` placeholders come from. */
export function parseExecutorConfig(text: string, origin: string, env: NodeJS.ProcessEnv = process.env): ExecutorConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ExecutorConfigError(`${origin}: not valid YAML: ${(err as Error).message}`);
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
    throw new ExecutorConfigError(`${origin}: invalid executor config: ${problems}`);
  }
  const c = raw as Partial<ExecutorConfig> & { catalog: string; decision_key_file: string };
  const base = dirname(resolve(origin));
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const runner = c.runner ?? { kind: 'local' };
  const maxInFlight = c.max_in_flight ?? 32;
  return {
    http: { address: c.http?.address ?? '127.0.0.1:9292' },
    ops: { address: c.ops?.address ?? '127.0.0.1:9465' },
    catalog: rel(c.catalog),
    max_in_flight: maxInFlight,
    max_in_flight_per_agent: c.max_in_flight_per_agent ?? Math.max(1, Math.ceil(maxInFlight / 4)),
    max_in_flight_by_agent: c.max_in_flight_by_agent ?? {},
    max_body_bytes: c.max_body_bytes ?? 2 * 1024 * 1024,
    idempotency: {
      retain_seconds: c.idempotency?.retain_seconds ?? 600,
      max_entries: c.idempotency?.max_entries ?? 10_000,
      max_bytes: c.idempotency?.max_bytes ?? 64 * 1024 * 1024,
    },
    ...(c.audit ? { audit: resolveAuditConfig(c.audit, rel) } : {}),
    decision_key_file: rel(c.decision_key_file),
    mcp: { allowed_origins: c.mcp?.allowed_origins ?? [] },
    runner:
      runner.kind === 'kubernetes'
        ? {
            ...runner,
            callback_url: expandCallbackUrl(runner.callback_url, env, origin),
            result_url: expandCallbackUrl(runner.result_url ?? runner.callback_url, env, origin, 'result_url'),
            command: runner.command ?? ['/nodejs/bin/node', '/app/dist/src/runner/main.js'],
            ttl_seconds_after_finished: runner.ttl_seconds_after_finished ?? 30,
            default_service_account: runner.default_service_account ?? 'toolgate-tool-default',
            ...(runner.kubeconfig ? { kubeconfig: rel(runner.kubeconfig) } : {}),
          }
        : localRunner(runner),
    // Last: the runner's own errors (POD_IP) are reported first.
    ...(c.store ? { store: storeConfigOf(c.store, env, origin) } : {}),
  };
}

function storeConfigOf(raw: Partial<StoreConfig>, env: NodeJS.ProcessEnv, origin: string): StoreConfig {
  try {
    return resolveStoreConfig(raw, env);
  } catch (err) {
    if (err instanceof StoreConfigError) throw new ExecutorConfigError(`${origin}: ${err.message}`);
    throw err;
  }
}

function localRunner(r: { kind: 'local'; pool?: Partial<LocalPoolConfig> }): LocalRunnerConfig {
  if (!r.pool) return { kind: 'local' };
  return { kind: 'local', pool: { size: r.pool.size ?? 0, tools: r.pool.tools ?? {}, max_total: r.pool.max_total ?? 16 } };
}

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces callback_url's `${NAME}` placeholders from the environment (see KubernetesRunnerConfig.callback_url). */
export function expandCallbackUrl(template: string, env: NodeJS.ProcessEnv, origin: string, field = 'callback_url'): string {
  const url = template.replace(PLACEHOLDER, (_, name: string, offset: number) => {
    const value = env[name]?.trim();
    if (!value) {
      const hint = name === 'POD_IP' ? ' (in Kubernetes, set it from the downward API: fieldRef status.podIP)' : '';
      throw new ExecutorConfigError(`${origin}: runner.${field} uses \${${name}}, but ${name} is not set in the executor's environment${hint}`);
    }
    return isIPv6(value) && template.slice(0, offset).endsWith('://') ? `[${value}]` : value;
  });
  if (template.replace(PLACEHOLDER, '').includes('${')) throw new ExecutorConfigError(`${origin}: runner.${field} has a malformed placeholder: ${template} (use \${NAME})`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ExecutorConfigError(`${origin}: runner.${field} is not a valid URL once expanded: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ExecutorConfigError(`${origin}: runner.${field} must be http(s): ${url}`);
  return url;
}

export async function loadExecutorConfig(path: string): Promise<ExecutorConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ExecutorConfigError(`cannot read executor config ${path}: ${(err as Error).message}`);
  }
  return parseExecutorConfig(text, path);
}
