import { Ajv, type ErrorObject } from 'ajv';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ServiceConfig } from './service-client.js';

/**
 * OPA's configuration file (https://www.openpolicyagent.org/docs/configuration), the parts toolgate runs:
 * `services`, `bundles`, `keys`, `decision_logs`, `labels` and the OPA Envoy plugin's
 * `plugins.envoy_ext_authz_grpc` (`addr`, `path`). A team moving from the OPA Envoy plugin points toolgate at
 * the same file. Anything else OPA knows (discovery, status, oauth2 credentials, several bundles, ...) is
 * named in a start error rather than silently ignored: a setting that does nothing would be a lie.
 */
export interface OpaSettings {
  services: Map<string, ServiceConfig>;
  bundle?: OpaBundle;
  decisionLogs?: OpaDecisionLogs;
  labels: Record<string, string>;
  plugin: { addr?: string; path?: string };
}

export interface OpaBundle {
  name: string;
  service: string;
  resource: string;
  pollMinSeconds: number;
  pollMaxSeconds: number;
  /** Where the last good bundle is kept (OPA's persistence_directory/bundles/<name>). */
  cacheDir: string;
  signing?: { keyid?: string; scope?: string; exclude_files?: string[]; keys: Record<string, { key: string; algorithm: string; scope?: string }> };
}

export interface OpaDecisionLogs {
  service?: string;
  resource: string;
  console: boolean;
  maskDecision: string;
  dropDecision?: string;
  bufferSizeLimitEvents: number;
  /** Bytes of buffered events (their input as encoded), so large bodies cannot grow the buffer without bound. */
  bufferSizeLimitBytes: number;
  uploadSizeLimitBytes: number;
  minDelaySeconds: number;
  maxDelaySeconds: number;
}

export class OpaConfigError extends Error {}

const str = { type: 'string' } as const;
const num = { type: 'number', exclusiveMinimum: 0 } as const;
const strMap = { type: 'object', additionalProperties: str } as const;

const SERVICE = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    name: str,
    url: { type: 'string', pattern: '^https?://' },
    headers: strMap,
    response_header_timeout_seconds: num,
    allow_insecure_tls: { const: false },
    tls: { type: 'object', additionalProperties: false, properties: { ca_cert: str, system_ca_required: { type: 'boolean' } } },
    credentials: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bearer: { type: 'object', additionalProperties: false, properties: { token: str, token_path: str, scheme: str } },
        client_tls: { type: 'object', additionalProperties: false, required: ['cert', 'private_key'], properties: { cert: str, private_key: str, private_key_passphrase: str, ca_cert: str } },
      },
    },
  },
} as const;

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    services: { type: 'object', additionalProperties: SERVICE },
    labels: strMap,
    keys: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['key'],
        properties: {
          key: { type: 'string', minLength: 1 },
          algorithm: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'] },
          scope: str,
        },
      },
    },
    bundles: {
      type: 'object',
      maxProperties: 1,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['service'],
        properties: {
          service: str,
          resource: str,
          persist: { type: 'boolean' },
          polling: { type: 'object', additionalProperties: false, properties: { min_delay_seconds: num, max_delay_seconds: num } },
          signing: { type: 'object', additionalProperties: false, properties: { keyid: str, scope: str, exclude_files: { type: 'array', items: str } } },
        },
      },
    },
    decision_logs: {
      type: 'object',
      additionalProperties: false,
      properties: {
        service: str,
        resource: str,
        console: { type: 'boolean' },
        mask_decision: str,
        drop_decision: str,
        reporting: {
          type: 'object',
          additionalProperties: false,
          properties: { buffer_size_limit_events: { type: 'integer', minimum: 1 }, buffer_size_limit_bytes: { type: 'integer', minimum: 1024 }, upload_size_limit_bytes: { type: 'integer', minimum: 1024 }, min_delay_seconds: num, max_delay_seconds: num },
        },
      },
    },
    persistence_directory: str,
    plugins: {
      type: 'object',
      additionalProperties: false,
      properties: { envoy_ext_authz_grpc: { type: 'object', additionalProperties: false, properties: { addr: str, path: str } } },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

/** `${VAR}` is replaced by the environment variable, as OPA does when it reads its configuration. */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env[name] ?? '');
}

export function parseOpaConfig(text: string, origin: string, env: NodeJS.ProcessEnv = process.env): OpaSettings {
  let raw: unknown;
  try {
    raw = parseYaml(substituteEnv(text, env));
  } catch (err) {
    throw new OpaConfigError(`${origin}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (raw === null || raw === undefined) raw = {};
  // OPA also takes services as a list of named services: the same thing as a map by name.
  const r = raw as { services?: unknown };
  if (Array.isArray(r.services)) {
    const named = r.services as { name?: unknown }[];
    if (named.some((s) => typeof s?.name !== 'string')) throw new OpaConfigError(`${origin}: every service in the services list needs a name`);
    r.services = Object.fromEntries(named.map((s) => [s.name as string, s]));
  }
  if (!validate(raw)) throw new OpaConfigError(`${origin}: ${describeErrors(validate.errors ?? []).join('; ')}`);
  const c = raw as OpaFile;
  const base = dirname(resolve(origin));
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));

  const services = new Map<string, ServiceConfig>();
  for (const [name, s] of Object.entries(c.services ?? {})) services.set(name, serviceOf(name, s, rel));

  const settings: OpaSettings = { services, labels: c.labels ?? {}, plugin: c.plugins?.envoy_ext_authz_grpc ?? {} };
  const serviceNamed = (name: string | undefined, where: string): string => {
    const chosen = name ?? (services.size === 1 ? [...services.keys()][0] : undefined);
    if (!chosen || !services.has(chosen)) throw new OpaConfigError(`${origin}: ${where} names service "${name ?? ''}", which is not in services (${[...services.keys()].join(', ') || 'none'})`);
    return chosen;
  };

  const [bundleName, b] = Object.entries(c.bundles ?? {})[0] ?? [];
  if (bundleName && b) {
    const min = b.polling?.min_delay_seconds ?? 60;
    const max = b.polling?.max_delay_seconds ?? Math.max(min, 120);
    if (max < min) throw new OpaConfigError(`${origin}: bundles.${bundleName}.polling.max_delay_seconds (${max}) is below min_delay_seconds (${min})`);
    settings.bundle = {
      name: bundleName,
      service: serviceNamed(b.service, `bundles.${bundleName}.service`),
      resource: b.resource ?? `bundles/${bundleName}`,
      pollMinSeconds: min,
      pollMaxSeconds: max,
      cacheDir: join(rel(c.persistence_directory ?? '.opa'), 'bundles', bundleName),
    };
    if (b.signing) {
      const keys = Object.fromEntries(Object.entries(c.keys ?? {}).map(([id, k]) => [id, { key: k.key, algorithm: k.algorithm ?? 'RS256', ...(k.scope !== undefined ? { scope: k.scope } : {}) }]));
      if (Object.keys(keys).length === 0) throw new OpaConfigError(`${origin}: bundles.${bundleName}.signing needs verification keys in "keys"`);
      if (b.signing.keyid && !keys[b.signing.keyid]) throw new OpaConfigError(`${origin}: bundles.${bundleName}.signing.keyid "${b.signing.keyid}" is not in keys`);
      settings.bundle.signing = { ...b.signing, keys };
    }
  }

  const d = c.decision_logs;
  if (d) {
    const min = d.reporting?.min_delay_seconds ?? 300;
    const max = d.reporting?.max_delay_seconds ?? Math.max(min, 600);
    if (max < min) throw new OpaConfigError(`${origin}: decision_logs.reporting.max_delay_seconds (${max}) is below min_delay_seconds (${min})`);
    settings.decisionLogs = {
      ...(d.service !== undefined || (!d.console && services.size > 0) ? { service: serviceNamed(d.service, 'decision_logs.service') } : {}),
      resource: d.resource ?? '/logs',
      console: d.console ?? false,
      maskDecision: d.mask_decision ?? 'system/log/mask',
      ...(d.drop_decision ? { dropDecision: d.drop_decision } : {}),
      bufferSizeLimitEvents: d.reporting?.buffer_size_limit_events ?? 10_000,
      bufferSizeLimitBytes: d.reporting?.buffer_size_limit_bytes ?? 64 * 1024 * 1024,
      uploadSizeLimitBytes: d.reporting?.upload_size_limit_bytes ?? 32_768,
      minDelaySeconds: min,
      maxDelaySeconds: max,
    };
  }
  return settings;
}

interface OpaService {
  name?: string;
  url: string;
  headers?: Record<string, string>;
  response_header_timeout_seconds?: number;
  tls?: { ca_cert?: string; system_ca_required?: boolean };
  credentials?: {
    bearer?: { token?: string; token_path?: string; scheme?: string };
    client_tls?: { cert: string; private_key: string; private_key_passphrase?: string; ca_cert?: string };
  };
}

interface OpaFile {
  services?: Record<string, OpaService>;
  labels?: Record<string, string>;
  keys?: Record<string, { key: string; algorithm?: string; scope?: string }>;
  bundles?: Record<string, { service?: string; resource?: string; polling?: { min_delay_seconds?: number; max_delay_seconds?: number }; signing?: { keyid?: string; scope?: string; exclude_files?: string[] } }>;
  decision_logs?: {
    service?: string;
    resource?: string;
    console?: boolean;
    mask_decision?: string;
    drop_decision?: string;
    reporting?: { buffer_size_limit_events?: number; buffer_size_limit_bytes?: number; upload_size_limit_bytes?: number; min_delay_seconds?: number; max_delay_seconds?: number };
  };
  persistence_directory?: string;
  plugins?: { envoy_ext_authz_grpc?: { addr?: string; path?: string } };
}

function serviceOf(name: string, s: OpaService, rel: (p: string) => string): ServiceConfig {
  const service: ServiceConfig = { name, url: s.url, headers: s.headers ?? {} };
  const bearer = s.credentials?.bearer;
  if (bearer) service.bearer = { scheme: bearer.scheme ?? 'Bearer', ...(bearer.token ? { token: bearer.token } : {}), ...(bearer.token_path ? { tokenPath: rel(bearer.token_path) } : {}) };
  const ct = s.credentials?.client_tls;
  const ca = s.tls?.ca_cert ?? ct?.ca_cert;
  if (ca || ct) {
    service.tls = {
      ...(ca ? { caCert: rel(ca) } : {}),
      ...(s.tls?.system_ca_required ? { systemCa: true } : {}),
      ...(ct ? { clientCert: rel(ct.cert), clientKey: rel(ct.private_key) } : {}),
      ...(ct?.private_key_passphrase ? { passphrase: ct.private_key_passphrase } : {}),
    };
  }
  if (s.response_header_timeout_seconds) service.responseHeaderTimeoutSeconds = s.response_header_timeout_seconds;
  return service;
}

/** Ajv's errors as a person reads them: the unsupported key by its full name. */
function describeErrors(errors: ErrorObject[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of errors) {
    // oneOf/anyOf restate their branches' errors; the branch errors are the useful ones.
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const at = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    let text: string;
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      text = `"${at ? `${at}.` : ''}${key}" is not supported by toolgate`;
    } else if (e.keyword === 'maxProperties' && at === 'bundles') {
      text = 'toolgate evaluates one bundle: "bundles" must name exactly one';
    } else if (e.keyword === 'const' && at.endsWith('allow_insecure_tls')) {
      text = `"${at}: true" is not supported (toolgate always verifies TLS)`;
    } else {
      text = `"${at || '(top level)'}" ${e.message ?? 'is invalid'}`;
    }
    if (!seen.has(text)) out.push(text);
    seen.add(text);
  }
  return out;
}
