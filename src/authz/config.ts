import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { AUDIT_CONFIG_SCHEMA, resolveAuditConfig, type AuditConfig } from '../audit/audit-config.js';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { OpaConfigError, parseOpaConfig, type OpaDecisionLogs, type OpaSettings } from './opa-config/opa-config.js';
import { ServiceClient, type ServiceConfig } from './opa-config/service-client.js';
import { STORE_CONFIG_SCHEMA, StoreConfigError, resolveStoreConfig, type StoreConfig } from '../shared/store/store-config.js';
import { HISTORY_CONFIG_SCHEMA, resolveHistoryConfig, type HistoryConfig } from './history/history-config.js';
import { APPROVALS_CONFIG_SCHEMA, resolveApprovalsConfig, type ApprovalsConfig } from './approvals/approvals-config.js';

/** The authz server's configuration file (YAML). Relative paths are resolved against the file's directory. */
export interface AuthzConfig {
  grpc: GrpcListenerConfig;
  http: { address: string };
  catalog: string;
  /** Upstream MCP servers (src/catalog/mcp-servers.ts): field mapping of their tools, their credentials. */
  mcp_servers?: string;
  policy: {
    engine: 'embedded' | 'remote';
    decision: string;
    /** The bundle's name in decision log events (`bundles.<name>.revision`): the OPA configuration's bundle name. */
    bundle_name?: string;
    /** OPA's --strict-builtin-errors, for either engine: a builtin error fails the decision (deny) instead of being undefined. */
    strict_builtin_errors: boolean;
    bundle?: BundleConfig;
    /** Shadow policy: a candidate bundle evaluated on live traffic beside the active one; it never decides. */
    shadow?: BundleConfig;
    remote?: { url: string; timeout_ms: number; token?: string; token_file?: string };
  };
  identity: { jwt_metadata_namespace: string; jwt_payload_keys: string[]; agent_id_claim: string };
  /** Hash-chained audit trail of every refused call (allowed calls are recorded by the executor). */
  audit?: AuditConfig;
  /** The key shared with the executor to attest each allowed tool call (see shared/decision-attestation.ts). */
  decision_key_file?: string;
  /** Decision log shipping in OPA's format, from an OPA configuration file's decision_logs (and labels). */
  decision_logs?: DecisionLogsConfig;
  /** Shared state (history, approvals): Redis when redis_url is set, else this process's memory. */
  store?: StoreConfig;
  /** input.history: when it is fetched, the windows' lengths, the caps (src/authz/history/history-config.ts). */
  history?: HistoryConfig;
  /** Approvals (issue 18): the approvers' endpoint and page, who approves, how long approvals live. */
  approvals?: ApprovalsConfig;
}

export interface GrpcListenerConfig {
  address: string;
  /** mTLS for the hop from Envoy: only a client with a certificate from client_ca_file (and one of client_names) gets a decision. */
  tls?: { cert_file: string; key_file: string; client_ca_file: string; client_names?: string[] };
  /** On SIGTERM: report NOT_SERVING and keep answering this long (Envoy's health checks move traffic away), then GOAWAY. */
  drain_delay_ms: number;
  /** After GOAWAY, how long calls in flight may take before they are cancelled. */
  shutdown_grace_ms: number;
  max_concurrent_streams: number;
  keepalive: { interval_ms: number; timeout_ms: number };
}

export interface DecisionLogsConfig extends OpaDecisionLogs {
  /** The service object of `service` (credentials, TLS). */
  target?: ServiceConfig;
  labels: Record<string, string>;
}

export type BundleConfig = (
  | { file: string; poll_interval_ms: number }
  | {
      url: string;
      poll_min_seconds: number;
      poll_max_seconds: number;
      cache_dir: string;
      timeout_ms: number;
      token?: string;
      token_file?: string;
      /** From an OPA configuration: the service (credentials, TLS) and the bundle's resource on it. */
      service?: ServiceConfig;
      resource?: string;
    }
) & { signing?: SigningConfig };

/** OPA's bundle `signing` with its `keys` (keys from files are read at load). */
export interface SigningConfig {
  keyid?: string;
  scope?: string;
  exclude_files?: string[];
  keys: Record<string, { key?: string; key_file?: string; algorithm: string; scope?: string }>;
}

const SIGNING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['keys'],
  properties: {
    keyid: { type: 'string', minLength: 1 },
    scope: { type: 'string' },
    exclude_files: { type: 'array', items: { type: 'string' } },
    keys: {
      type: 'object',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          key: { type: 'string', minLength: 1 },
          key_file: { type: 'string', minLength: 1 },
          algorithm: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'] },
          scope: { type: 'string' },
        },
      },
    },
  },
} as const;

const BUNDLE_SCHEMA = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['file'],
      properties: { file: { type: 'string', minLength: 1 }, poll_interval_ms: { type: 'integer', minimum: 100 }, signing: SIGNING_SCHEMA },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'cache_dir'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        poll_min_seconds: { type: 'number', exclusiveMinimum: 0 },
        poll_max_seconds: { type: 'number', exclusiveMinimum: 0 },
        cache_dir: { type: 'string', minLength: 1 },
        timeout_ms: { type: 'integer', minimum: 1 },
        token: { type: 'string' },
        token_file: { type: 'string', minLength: 1 },
        signing: SIGNING_SCHEMA,
      },
    },
  ],
} as const;

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['catalog', 'policy'],
  properties: {
    grpc: {
      type: 'object',
      additionalProperties: false,
      properties: {
        address: { type: 'string', minLength: 3 },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert_file', 'key_file', 'client_ca_file'],
          properties: {
            cert_file: { type: 'string', minLength: 1 },
            key_file: { type: 'string', minLength: 1 },
            client_ca_file: { type: 'string', minLength: 1 },
            client_names: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
          },
        },
        drain_delay_ms: { type: 'integer', minimum: 0 },
        shutdown_grace_ms: { type: 'integer', minimum: 0 },
        max_concurrent_streams: { type: 'integer', minimum: 1 },
        keepalive: {
          type: 'object',
          additionalProperties: false,
          properties: { interval_ms: { type: 'integer', minimum: 1000 }, timeout_ms: { type: 'integer', minimum: 100 } },
        },
      },
    },
    http: { type: 'object', additionalProperties: false, properties: { address: { type: 'string', minLength: 3 } } },
    catalog: { type: 'string', minLength: 1 },
    mcp_servers: { type: 'string', minLength: 1 },
    policy: {
      type: 'object',
      additionalProperties: false,
      required: ['engine'],
      properties: {
        engine: { enum: ['embedded', 'remote'] },
        decision: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$' },
        strict_builtin_errors: { type: 'boolean' },
        bundle: BUNDLE_SCHEMA,
        /** A candidate bundle evaluated beside the active one, never deciding (shadow policy). */
        shadow: BUNDLE_SCHEMA,
        remote: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: { url: { type: 'string', pattern: '^https?://' }, timeout_ms: { type: 'integer', minimum: 1 }, token: { type: 'string' }, token_file: { type: 'string', minLength: 1 } },
        },
      },
    },
    audit: AUDIT_CONFIG_SCHEMA,
    approvals: APPROVALS_CONFIG_SCHEMA,
    decision_key_file: { type: 'string', minLength: 1 },
    store: STORE_CONFIG_SCHEMA,
    history: HISTORY_CONFIG_SCHEMA,
    opa_config: { type: 'string', minLength: 1 },
    identity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        jwt_metadata_namespace: { type: 'string' },
        jwt_payload_keys: { type: 'array', items: { type: 'string' }, minItems: 1 },
        agent_id_claim: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

export class ConfigError extends Error {}

/** `env`: where `store.redis_url_env` is read (the process's environment by default). */
export function parseAuthzConfig(text: string, origin: string, env: NodeJS.ProcessEnv = process.env): AuthzConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${origin}: not valid YAML: ${(err as Error).message}`);
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
    throw new ConfigError(`${origin}: invalid authz config: ${problems}`);
  }
  const c = raw as Partial<AuthzConfig> & { catalog: string; policy: Partial<AuthzConfig['policy']> & { bundle?: Record<string, unknown> } };
  const base = dirname(resolve(origin));
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const engine = c.policy.engine ?? 'embedded';
  const config: AuthzConfig = {
    grpc: {
      address: c.grpc?.address ?? '127.0.0.1:9191',
      ...(c.grpc?.tls
        ? { tls: { cert_file: rel(c.grpc.tls.cert_file), key_file: rel(c.grpc.tls.key_file), client_ca_file: rel(c.grpc.tls.client_ca_file), ...(c.grpc.tls.client_names ? { client_names: c.grpc.tls.client_names } : {}) } }
        : {}),
      drain_delay_ms: c.grpc?.drain_delay_ms ?? 0,
      shutdown_grace_ms: c.grpc?.shutdown_grace_ms ?? 5000,
      max_concurrent_streams: c.grpc?.max_concurrent_streams ?? 1024,
      keepalive: { interval_ms: c.grpc?.keepalive?.interval_ms ?? 30_000, timeout_ms: c.grpc?.keepalive?.timeout_ms ?? 10_000 },
    },
    http: { address: c.http?.address ?? '127.0.0.1:9464' },
    catalog: rel(c.catalog),
    ...(c.mcp_servers ? { mcp_servers: rel(c.mcp_servers) } : {}),
    policy: { engine, decision: c.policy.decision ?? 'agent/authz', strict_builtin_errors: c.policy.strict_builtin_errors ?? false },
    identity: {
      jwt_metadata_namespace: c.identity?.jwt_metadata_namespace ?? 'envoy.filters.http.jwt_authn',
      jwt_payload_keys: c.identity?.jwt_payload_keys ?? ['jwt_payload'],
      agent_id_claim: c.identity?.agent_id_claim ?? 'sub',
    },
    ...(c.audit ? { audit: resolveAuditConfig(c.audit, rel) } : {}),
    ...(c.decision_key_file ? { decision_key_file: rel(c.decision_key_file) } : {}),
    store: storeConfigOf(c.store, origin, env),
    history: resolveHistoryConfig(c.history),
  };
  if (c.approvals) config.approvals = resolveApprovalsConfig(c.approvals as Parameters<typeof resolveApprovalsConfig>[0], rel, config.identity.agent_id_claim);
  const b = c.policy.bundle;
  if (b) config.policy.bundle = bundleConfigOf(b, rel, origin, 'policy.bundle');
  const shadow = (c.policy as { shadow?: Record<string, unknown> }).shadow;
  if (shadow) config.policy.shadow = bundleConfigOf(shadow, rel, origin, 'policy.shadow');
  if (c.policy.remote) {
    const r = c.policy.remote;
    config.policy.remote = { url: r.url, timeout_ms: r.timeout_ms ?? 500, ...(r.token ? { token: r.token } : {}), ...(r.token_file ? { token_file: rel(r.token_file) } : {}) };
  }
  if (typeof (raw as unknown as { opa_config?: unknown }).opa_config === 'string') {
    const path = rel((raw as unknown as { opa_config: string }).opa_config);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`${origin}: cannot read opa_config ${path}: ${(err as Error).message}`);
    }
    try {
      applyOpaConfig(config, parseOpaConfig(text, path), c as Record<string, unknown>, origin);
    } catch (err) {
      if (err instanceof OpaConfigError) throw new ConfigError(`invalid OPA configuration: ${err.message}`);
      throw err;
    }
  }
  if (engine === 'embedded' && !config.policy.bundle) throw new ConfigError(`${origin}: the embedded engine needs policy.bundle (file or url)`);
  if (engine === 'remote' && !config.policy.remote) throw new ConfigError(`${origin}: the remote engine needs policy.remote.url`);
  return config;
}

function storeConfigOf(raw: Partial<StoreConfig> | undefined, origin: string, env: NodeJS.ProcessEnv): StoreConfig {
  try {
    return resolveStoreConfig(raw, env);
  } catch (err) {
    if (err instanceof StoreConfigError) throw new ConfigError(`${origin}: ${err.message}`);
    throw err;
  }
}

/**
 * An OPA configuration file fills what toolgate's own file leaves out: the bundle (from bundles + services +
 * keys), the decision path and gRPC address (from plugins.envoy_ext_authz_grpc), decision log shipping.
 * Saying the same thing twice differently is an error, not a silent precedence rule.
 */
function applyOpaConfig(config: AuthzConfig, opa: OpaSettings, raw: Record<string, unknown>, origin: string): void {
  const rawPolicy = (raw.policy ?? {}) as Record<string, unknown>;
  if (opa.bundle) {
    if (config.policy.bundle) throw new ConfigError(`${origin}: policy.bundle and the OPA configuration's bundles both name a bundle; keep one`);
    const service = opa.services.get(opa.bundle.service) as ServiceConfig;
    config.policy.bundle_name = opa.bundle.name;
    config.policy.bundle = {
      url: new ServiceClient(service).urlOf(opa.bundle.resource),
      service,
      resource: opa.bundle.resource,
      poll_min_seconds: opa.bundle.pollMinSeconds,
      poll_max_seconds: opa.bundle.pollMaxSeconds,
      cache_dir: opa.bundle.cacheDir,
      timeout_ms: (service.responseHeaderTimeoutSeconds ?? 10) * 1000,
      ...(opa.bundle.signing ? { signing: opa.bundle.signing } : {}),
    };
  }
  if (opa.plugin.path !== undefined) {
    const path = opa.plugin.path.replace(/^\/+/, '');
    if (typeof rawPolicy.decision === 'string' && rawPolicy.decision !== path) throw new ConfigError(`${origin}: policy.decision "${rawPolicy.decision}" differs from the OPA configuration's plugins.envoy_ext_authz_grpc.path "${path}"`);
    config.policy.decision = path;
  }
  if (opa.plugin.addr !== undefined) {
    // OPA's ":9191" listens on every interface.
    const addr = opa.plugin.addr.startsWith(':') ? `0.0.0.0${opa.plugin.addr}` : opa.plugin.addr;
    const own = (raw.grpc as { address?: string } | undefined)?.address;
    if (own !== undefined && own !== addr) throw new ConfigError(`${origin}: grpc.address "${own}" differs from the OPA configuration's plugins.envoy_ext_authz_grpc.addr "${opa.plugin.addr}"`);
    config.grpc.address = addr;
  }
  if (opa.decisionLogs) {
    const d = opa.decisionLogs;
    config.decision_logs = { ...d, labels: opa.labels, ...(d.service ? { target: opa.services.get(d.service) as ServiceConfig } : {}) };
  }
}

function bundleConfigOf(b: Record<string, unknown>, rel: (p: string) => string, origin: string, key: string): BundleConfig {
  let config: BundleConfig;
  if (typeof b.file === 'string') {
    config = { file: rel(b.file), poll_interval_ms: (b.poll_interval_ms as number | undefined) ?? 1000 };
  } else {
    const min = (b.poll_min_seconds as number | undefined) ?? 10;
    const max = (b.poll_max_seconds as number | undefined) ?? Math.max(min, 20);
    if (max < min) throw new ConfigError(`${origin}: ${key}.poll_max_seconds (${max}) is below poll_min_seconds (${min})`);
    config = {
      url: b.url as string,
      poll_min_seconds: min,
      poll_max_seconds: max,
      cache_dir: rel(b.cache_dir as string),
      timeout_ms: (b.timeout_ms as number | undefined) ?? 5000,
      ...(typeof b.token === 'string' ? { token: b.token } : {}),
      ...(typeof b.token_file === 'string' ? { token_file: rel(b.token_file) } : {}),
    };
  }
  if (b.signing) config.signing = signingConfig(b.signing as unknown as SigningConfig, rel, origin);
  return config;
}

function signingConfig(s: SigningConfig, rel: (p: string) => string, origin: string): SigningConfig {
  const keys: SigningConfig['keys'] = {};
  for (const [id, k] of Object.entries(s.keys)) {
    if ((k.key === undefined) === (k.key_file === undefined)) throw new ConfigError(`${origin}: policy.bundle.signing.keys.${id} needs exactly one of key or key_file`);
    keys[id] = { algorithm: k.algorithm ?? 'RS256', ...(k.key ? { key: k.key } : {}), ...(k.key_file ? { key_file: rel(k.key_file) } : {}), ...(k.scope !== undefined ? { scope: k.scope } : {}) };
  }
  if (s.keyid && !keys[s.keyid]) throw new ConfigError(`${origin}: policy.bundle.signing.keyid "${s.keyid}" is not one of the keys`);
  return { ...s, keys };
}

export async function loadAuthzConfig(path: string): Promise<AuthzConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read authz config ${path}: ${(err as Error).message}`);
  }
  const config = parseAuthzConfig(text, path);
  // Bearer tokens from files (a mounted Secret), so they never sit in a ConfigMap.
  for (const target of [config.policy.bundle, config.policy.shadow, config.policy.remote]) {
    if (target && 'token_file' in target && target.token_file) {
      try {
        target.token = (await readFile(target.token_file, 'utf8')).trim();
      } catch (err) {
        throw new ConfigError(`${path}: cannot read token_file ${target.token_file}: ${(err as Error).message}`);
      }
    }
  }
  // Verification keys from files (PEM public keys, or HMAC secrets from a mounted Secret).
  for (const [id, k] of [config.policy.bundle, config.policy.shadow].flatMap((b) => Object.entries(b?.signing?.keys ?? {}))) {
    if (k.key_file) {
      try {
        k.key = await readFile(k.key_file, 'utf8');
      } catch (err) {
        throw new ConfigError(`${path}: cannot read the verification key ${id} from ${k.key_file}: ${(err as Error).message}`);
      }
    }
  }
  return config;
}
