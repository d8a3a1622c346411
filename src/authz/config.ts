import { Ajv } from 'ajv';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The authz server's configuration file (YAML). Relative paths are resolved against the file's directory. */
export interface AuthzConfig {
  grpc: { address: string };
  http: { address: string };
  catalog: string;
  /** Upstream MCP servers (src/catalog/mcp-servers.ts): field mapping of their tools, their credentials. */
  mcp_servers?: string;
  policy: {
    engine: 'embedded' | 'remote';
    decision: string;
    bundle?: BundleConfig;
    remote?: { url: string; timeout_ms: number; token?: string; token_file?: string };
  };
  identity: { jwt_metadata_namespace: string; jwt_payload_keys: string[]; agent_id_claim: string };
  /** Hash-chained audit trail of every refused call (allowed calls are recorded by the executor). */
  audit?: { path: string };
  /** The key shared with the executor to attest each allowed tool call (see shared/decision-attestation.ts). */
  decision_key_file?: string;
}

export type BundleConfig =
  | { file: string; poll_interval_ms: number }
  | { url: string; poll_min_seconds: number; poll_max_seconds: number; cache_dir: string; timeout_ms: number; token?: string; token_file?: string };

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['catalog', 'policy'],
  properties: {
    grpc: { type: 'object', additionalProperties: false, properties: { address: { type: 'string', minLength: 3 } } },
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
        bundle: {
          oneOf: [
            {
              type: 'object',
              additionalProperties: false,
              required: ['file'],
              properties: { file: { type: 'string', minLength: 1 }, poll_interval_ms: { type: 'integer', minimum: 100 } },
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
              },
            },
          ],
        },
        remote: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: { url: { type: 'string', pattern: '^https?://' }, timeout_ms: { type: 'integer', minimum: 1 }, token: { type: 'string' }, token_file: { type: 'string', minLength: 1 } },
        },
      },
    },
    audit: { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string', minLength: 1 } } },
    decision_key_file: { type: 'string', minLength: 1 },
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

export function parseAuthzConfig(text: string, origin: string): AuthzConfig {
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
    grpc: { address: c.grpc?.address ?? '127.0.0.1:9191' },
    http: { address: c.http?.address ?? '127.0.0.1:9464' },
    catalog: rel(c.catalog),
    ...(c.mcp_servers ? { mcp_servers: rel(c.mcp_servers) } : {}),
    policy: { engine, decision: c.policy.decision ?? 'agent/authz' },
    identity: {
      jwt_metadata_namespace: c.identity?.jwt_metadata_namespace ?? 'envoy.filters.http.jwt_authn',
      jwt_payload_keys: c.identity?.jwt_payload_keys ?? ['jwt_payload'],
      agent_id_claim: c.identity?.agent_id_claim ?? 'sub',
    },
    ...(c.audit ? { audit: { path: rel(c.audit.path) } } : {}),
    ...(c.decision_key_file ? { decision_key_file: rel(c.decision_key_file) } : {}),
  };
  const b = c.policy.bundle;
  if (b && typeof b.file === 'string') {
    config.policy.bundle = { file: rel(b.file), poll_interval_ms: (b.poll_interval_ms as number | undefined) ?? 1000 };
  } else if (b && typeof b.url === 'string') {
    const min = (b.poll_min_seconds as number | undefined) ?? 10;
    const max = (b.poll_max_seconds as number | undefined) ?? Math.max(min, 20);
    if (max < min) throw new ConfigError(`${origin}: policy.bundle.poll_max_seconds (${max}) is below poll_min_seconds (${min})`);
    config.policy.bundle = {
      url: b.url,
      poll_min_seconds: min,
      poll_max_seconds: max,
      cache_dir: rel(b.cache_dir as string),
      timeout_ms: (b.timeout_ms as number | undefined) ?? 5000,
      ...(typeof b.token === 'string' ? { token: b.token } : {}),
      ...(typeof b.token_file === 'string' ? { token_file: rel(b.token_file) } : {}),
    };
  }
  if (c.policy.remote) {
    const r = c.policy.remote;
    config.policy.remote = { url: r.url, timeout_ms: r.timeout_ms ?? 500, ...(r.token ? { token: r.token } : {}), ...(r.token_file ? { token_file: rel(r.token_file) } : {}) };
  }
  if (engine === 'embedded' && !config.policy.bundle) throw new ConfigError(`${origin}: the embedded engine needs policy.bundle (file or url)`);
  if (engine === 'remote' && !config.policy.remote) throw new ConfigError(`${origin}: the remote engine needs policy.remote.url`);
  return config;
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
  for (const target of [config.policy.bundle, config.policy.remote]) {
    if (target && 'token_file' in target && target.token_file) {
      try {
        target.token = (await readFile(target.token_file, 'utf8')).trim();
      } catch (err) {
        throw new ConfigError(`${path}: cannot read token_file ${target.token_file}: ${(err as Error).message}`);
      }
    }
  }
  return config;
}
