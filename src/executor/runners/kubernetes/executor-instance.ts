import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

/** Label values: at most 63 characters, alphanumerics, '-', '_' and '.', alphanumeric at both ends. */
const MAX_LABEL_VALUE = 63;

/**
 * Which executor instance this process is, as a label value: the pod's name (POD_NAME, from the downward
 * API), else the hostname (a pod's hostname is its name, truncated). Each instance labels the Jobs it starts
 * with it, so that at start it reconciles only its own and never another replica's live calls.
 */
export function executorInstance(env: NodeJS.ProcessEnv = process.env, host: () => string = hostname): string {
  return toLabelValue(env.POD_NAME?.trim() || host());
}

/**
 * Any string as a valid label value: invalid characters become '-'; a value too long keeps its start and
 * gets a digest of the whole, so two long names that share a prefix stay distinct.
 */
export function toLabelValue(raw: string): string {
  let v = raw.replace(/[^A-Za-z0-9_.-]/g, '-');
  if (v.length > MAX_LABEL_VALUE) {
    const digest = createHash('sha256').update(raw).digest('hex').slice(0, 10);
    v = `${v.slice(0, MAX_LABEL_VALUE - digest.length - 1)}-${digest}`;
  }
  v = v.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  return v || 'unnamed';
}
