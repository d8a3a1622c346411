import { canonicalJson } from './digest.js';
import { cpuMillis, memoryBytes, QuantityError } from './resource-quantity.js';

/**
 * Obligations: limits a policy attaches to an allow, which the execution must apply. They can only tighten
 * what the tool's catalog entry grants (a shorter timeout, less memory or CPU, no network), never widen it.
 * The authz server checks them against the catalog and refuses the call otherwise; the executor receives them
 * in a trusted, attested header (x-toolgate-obligations, the canonical JSON of this object) and runs the call
 * with the tighter of the catalog's and the obligation's value for each.
 */
export interface Obligations {
  /** Seconds, a whole number >= 1 (a Job's activeDeadlineSeconds is whole seconds). */
  timeout_seconds?: number;
  /** A Kubernetes quantity, e.g. "64Mi". */
  memory?: string;
  /** A Kubernetes quantity, e.g. "250m". */
  cpu?: string;
  /** Only "none": no network at all. */
  network?: 'none';
}

/** The part of a tool's execution settings obligations can tighten (the catalog's ToolExecution has it). */
export interface ExecutionLimits {
  timeout_seconds: number;
  network: string;
  resources: { cpu: string; memory: string };
}

export const OBLIGATION_KEYS = ['timeout_seconds', 'memory', 'cpu', 'network'] as const;

/** Obligations that are not an object of known keys with valid values, or that would widen the catalog. */
export class ObligationsError extends Error {}

/**
 * Reads obligations from an untrusted value (a policy's result, a header's JSON). Every problem is named
 * (`where` prefixes it); an empty object is no obligations at all (undefined).
 */
export function parseObligations(value: unknown, where = 'obligations'): Obligations | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ObligationsError(`${where} must be an object with any of ${OBLIGATION_KEYS.join(', ')}, got ${describe(value)}`);
  }
  const doc = value as Record<string, unknown>;
  const out: Obligations = {};
  for (const [key, v] of Object.entries(doc)) {
    switch (key) {
      case 'timeout_seconds':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ObligationsError(`${where}.timeout_seconds must be a whole number of seconds >= 1, got ${JSON.stringify(v)}`);
        out.timeout_seconds = v;
        break;
      case 'memory':
        out.memory = quantity(v, `${where}.memory`, memoryBytes);
        break;
      case 'cpu':
        out.cpu = quantity(v, `${where}.cpu`, cpuMillis);
        break;
      case 'network':
        if (v !== 'none') throw new ObligationsError(`${where}.network can only be "none" (an obligation never grants network), got ${JSON.stringify(v)}`);
        out.network = 'none';
        break;
      default:
        throw new ObligationsError(`${where} has an unknown key "${key}" (known: ${OBLIGATION_KEYS.join(', ')}): refusing rather than ignoring a limit`);
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A quantity as a string (a number is read as Kubernetes reads a bare number: bytes or cores); > 0. */
function quantity(v: unknown, where: string, amount: (q: string) => number): string {
  const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
  if (typeof text !== 'string') throw new ObligationsError(`${where} must be a Kubernetes quantity string such as "64Mi" or "250m", got ${describe(v)}`);
  let n: number;
  try {
    n = amount(text);
  } catch (err) {
    if (err instanceof QuantityError) throw new ObligationsError(`${where}: ${err.message}`);
    throw err;
  }
  if (!(n > 0)) throw new ObligationsError(`${where} must be more than zero, got "${text}"`);
  return text;
}

/** Where obligations would widen the catalog's execution settings (empty: they only tighten or keep). */
export function wideningProblems(o: Obligations, exec: ExecutionLimits, tool: string): string[] {
  const problems: string[] = [];
  if (o.timeout_seconds !== undefined && o.timeout_seconds > exec.timeout_seconds) {
    problems.push(`obligations.timeout_seconds ${o.timeout_seconds} is longer than tool "${tool}"'s timeout of ${exec.timeout_seconds} s`);
  }
  if (o.memory !== undefined && memoryBytes(o.memory) > memoryBytes(exec.resources.memory)) {
    problems.push(`obligations.memory "${o.memory}" is more than tool "${tool}"'s memory limit of ${exec.resources.memory}`);
  }
  if (o.cpu !== undefined && cpuMillis(o.cpu) > cpuMillis(exec.resources.cpu)) {
    problems.push(`obligations.cpu "${o.cpu}" is more than tool "${tool}"'s CPU limit of ${exec.resources.cpu}`);
  }
  return problems;
}

/**
 * The execution settings a call runs with: for each limit the tighter of the catalog's and the obligation's.
 * Tighter, never wider, whatever the obligation says (the authz server refused widening ones already; a
 * catalog that differs between the authz server and the executor still cannot widen anything here).
 */
export function applyObligations<T extends ExecutionLimits>(exec: T, o: Obligations | undefined): T {
  if (!o) return exec;
  const out: T = { ...exec, resources: { ...exec.resources } };
  if (o.timeout_seconds !== undefined) out.timeout_seconds = Math.min(exec.timeout_seconds, o.timeout_seconds);
  if (o.memory !== undefined && memoryBytes(o.memory) < memoryBytes(exec.resources.memory)) out.resources.memory = o.memory;
  if (o.cpu !== undefined && cpuMillis(o.cpu) < cpuMillis(exec.resources.cpu)) out.resources.cpu = o.cpu;
  if (o.network === 'none') out.network = 'none';
  return out;
}

/** The header value: canonical JSON (keys sorted), so the authz server and the executor MAC the same bytes. */
export function encodeObligations(o: Obligations): string {
  return canonicalJson(o);
}

/** The header value back to obligations; throws ObligationsError when it is not JSON of valid obligations. */
export function decodeObligations(header: string): Obligations | undefined {
  let value: unknown;
  try {
    value = JSON.parse(header);
  } catch {
    throw new ObligationsError('the obligations header is not JSON');
  }
  return parseObligations(value, 'the obligations header');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
