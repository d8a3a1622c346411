import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../shared/repo-paths.js';

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
  MAX_REQUEST_BYTES: number;
  TLS_CERT_PATH: string;
  TLS_KEY_PATH: string;
  CLIENT_CA_PATH: string;
  JWKS_PATH: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  ACCESS_LOG_PATH: string;
}

export const ENVOY_TEMPLATE_PATH = join(REPO_ROOT, 'envoy', 'toolgate.yaml');

/** Substitutes every ${NAME}; a placeholder without a value is an error, never an empty string. */
export function renderTemplate(template: string, values: Record<string, string | number>): string {
  const missing = new Set<string>();
  const out = template.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
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
  return renderTemplate(await readFile(templatePath, 'utf8'), values as unknown as Record<string, string | number>);
}
