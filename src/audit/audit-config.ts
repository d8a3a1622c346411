import { readFile } from 'node:fs/promises';
import type { Logger } from '../shared/logger.js';
import { AuditTrail } from './audit-trail.js';

/** `audit:` in the authz and executor configs: where the trail is written, and the key that makes it keyed. */
export interface AuditConfig {
  path: string;
  key_file?: string;
}

export const AUDIT_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: { path: { type: 'string', minLength: 1 }, key_file: { type: 'string', minLength: 1 } },
} as const;

/**
 * Resolves relative paths, and `${POD_NAME}` in the path from the environment: in Kubernetes several
 * replicas may write into one volume, each its own trail.
 */
export function resolveAuditConfig(raw: AuditConfig, rel: (p: string) => string, env: NodeJS.ProcessEnv = process.env): AuditConfig {
  const path = raw.path.replace(/\$\{POD_NAME\}/gu, env.POD_NAME ?? 'local');
  return { path: rel(path), ...(raw.key_file ? { key_file: rel(raw.key_file) } : {}) };
}

const MIN_KEY_BYTES = 32;

/** Opens the trail (keyed when a key file is given), reporting a torn last line that was cut off. */
export async function openAuditTrail(config: AuditConfig, log: Logger): Promise<AuditTrail> {
  let key: Buffer | undefined;
  if (config.key_file) {
    key = Buffer.from((await readFile(config.key_file, 'utf8')).trim(), 'utf8');
    if (key.length < MIN_KEY_BYTES) throw new Error(`audit key ${config.key_file} is shorter than ${MIN_KEY_BYTES} bytes`);
  }
  return AuditTrail.open(config.path, {
    ...(key ? { key } : {}),
    onRecovered: (torn) =>
      log.warn('audit trail had a torn last line (a write cut short by a crash): cut off, kept aside and recorded in the chain', {
        path: config.path,
        torn_bytes: torn.bytes,
        saved_to: torn.savedTo,
      }),
  });
}
