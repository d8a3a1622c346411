import type { JsonObject } from '../input/envoy-input.js';
import type { Obligations } from '../../shared/obligations.js';
import { obligationsOfDecision } from './obligations.js';
import { PolicyError } from './policy-engine.js';
import { approvalRequirement, type ApprovalRequirement } from './approval-requirement.js';

/**
 * The meaning of a policy result, independent of the engine. Accepted shapes:
 * - a boolean (OPA Envoy plugin style `allow`);
 * - an object with boolean `allowed` plus optional `headers`, `response_headers_to_add`,
 *   `request_headers_to_remove`, `query_parameters_to_set`, `query_parameters_to_remove`, `body`,
 *   `http_status`, `dynamic_metadata` (the plugin's object result);
 * - a package document with `allow` and optionally `deny` (boolean, or a set of messages) and `reasons`
 *   (as the seed policy): allowed only if `allow` is true and no `deny` matched.
 * Deny always wins: a document with both shapes (a package with a rule named `allowed` next to `allow` or
 * `deny`) is allowed only when every one of them allows.
 */
export interface PolicyDecision {
  allowed: boolean;
  reasons: string[];
  httpStatus: number | undefined;
  headers: Record<string, string[]>;
  responseHeadersToAdd: Record<string, string[]>;
  requestHeadersToRemove: string[];
  queryParametersToSet: Record<string, string>;
  queryParametersToRemove: string[];
  body: string | undefined;
  dynamicMetadata: JsonObject | undefined;
  /** Issue 18 approvals: with an allow, the call runs only with a person's approval of this exact call. */
  approval?: ApprovalRequirement | undefined;
  /** With an allow: limits the execution must apply (policy/obligations.ts); undefined when none. */
  obligations?: Obligations | undefined;
}

function emptyDecision(allowed: boolean, reasons: string[]): PolicyDecision {
  return {
    allowed,
    reasons,
    httpStatus: undefined,
    headers: {},
    responseHeadersToAdd: {},
    requestHeadersToRemove: [],
    queryParametersToSet: {},
    queryParametersToRemove: [],
    body: undefined,
    dynamicMetadata: undefined,
    obligations: undefined,
  };
}

export function interpretResult(result: unknown, decisionPath: string): PolicyDecision {
  const decision = interpretAllow(result, decisionPath);
  // Deny always wins over an approval: only an allowed call can be held for one.
  if (decision.allowed && result !== null && typeof result === 'object' && !Array.isArray(result)) {
    const approval = approvalRequirement(result as JsonObject, `data.${decisionPath.replaceAll('/', '.')}`);
    if (approval) decision.approval = approval;
  }
  return decision;
}

function interpretAllow(result: unknown, decisionPath: string): PolicyDecision {
  const where = `data.${decisionPath.replaceAll('/', '.')}`;
  if (result === undefined) throw new PolicyError(`policy decision ${where} is undefined (is the bundle's package right?)`);
  if (typeof result === 'boolean') {
    return emptyDecision(result, result ? [] : [`${where} is false`]);
  }
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    throw new PolicyError(`policy decision ${where} must be a boolean or an object, got ${describe(result)}`);
  }
  const doc = result as JsonObject;
  if ('allowed' in doc) {
    const decision = fromPluginObject(doc, where);
    if (!('allow' in doc || 'deny' in doc)) return decision;
    const pkg = fromPackageDocument(doc, where);
    if (decision.allowed && !pkg.allowed) return { ...decision, allowed: false, reasons: pkg.reasons };
    return decision;
  }
  if ('allow' in doc || 'deny' in doc) return fromPackageDocument(doc, where);
  throw new PolicyError(`policy decision ${where} has neither "allowed" nor "allow"`);
}

function fromPackageDocument(doc: JsonObject, where: string): PolicyDecision {
  const allow = doc.allow;
  if (allow !== undefined && typeof allow !== 'boolean') {
    throw new PolicyError(`${where}.allow must be a boolean, got ${describe(allow)}`);
  }
  const denyMessages = messages(doc.deny, `${where}.deny`);
  const denied = doc.deny === true || denyMessages.length > 0;
  const reasons = [...denyMessages, ...messages(doc.reasons, `${where}.reasons`)];
  const allowed = allow === true && !denied;
  if (!allowed && reasons.length === 0) {
    reasons.push(denied ? `${where}.deny matched` : `no rule in ${where} allows this call`);
  }
  const decision = emptyDecision(allowed, allowed ? [] : dedupe(reasons));
  if (doc.http_status !== undefined) decision.httpStatus = httpStatus(doc.http_status, where);
  if (doc.dynamic_metadata !== undefined) decision.dynamicMetadata = objectField(doc.dynamic_metadata, `${where}.dynamic_metadata`);
  if (allowed) decision.obligations = obligationsOfDecision(doc.obligations, where);
  return decision;
}

function fromPluginObject(doc: JsonObject, where: string): PolicyDecision {
  if (typeof doc.allowed !== 'boolean') throw new PolicyError(`${where}.allowed must be a boolean, got ${describe(doc.allowed)}`);
  const reasons = messages(doc.reasons, `${where}.reasons`);
  const d = emptyDecision(doc.allowed, doc.allowed || reasons.length > 0 ? reasons : [`${where}.allowed is false`]);
  if (doc.http_status !== undefined) d.httpStatus = httpStatus(doc.http_status, where);
  if (doc.headers !== undefined) d.headers = headerMap(doc.headers, `${where}.headers`);
  if (doc.response_headers_to_add !== undefined) {
    d.responseHeadersToAdd = headerMap(doc.response_headers_to_add, `${where}.response_headers_to_add`);
  }
  if (doc.request_headers_to_remove !== undefined) {
    d.requestHeadersToRemove = stringList(doc.request_headers_to_remove, `${where}.request_headers_to_remove`);
  }
  if (doc.query_parameters_to_remove !== undefined) {
    d.queryParametersToRemove = stringList(doc.query_parameters_to_remove, `${where}.query_parameters_to_remove`);
  }
  if (doc.query_parameters_to_set !== undefined) {
    const q = objectField(doc.query_parameters_to_set, `${where}.query_parameters_to_set`);
    for (const [k, v] of Object.entries(q)) d.queryParametersToSet[k] = String(v);
  }
  if (doc.body !== undefined) {
    if (typeof doc.body !== 'string') throw new PolicyError(`${where}.body must be a string`);
    d.body = doc.body;
  }
  if (doc.dynamic_metadata !== undefined) d.dynamicMetadata = objectField(doc.dynamic_metadata, `${where}.dynamic_metadata`);
  if (d.allowed) d.obligations = obligationsOfDecision(doc.obligations, where);
  return d;
}

/** `deny`/`reasons` may be a boolean, a string, or a set/array of strings (partial set rules). */
function messages(value: unknown, where: string): string[] {
  if (value === undefined || typeof value === 'boolean') return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  throw new PolicyError(`${where} must be a boolean, a string or a set of strings, got ${describe(value)}`);
}

function httpStatus(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 100 || value > 599) {
    throw new PolicyError(`${where}.http_status must be an HTTP status code, got ${describe(value)}`);
  }
  return value;
}

function headerMap(value: unknown, where: string): Record<string, string[]> {
  const obj = objectField(value, where);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') out[k] = [v];
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v as string[];
    else throw new PolicyError(`${where}["${k}"] must be a string or a list of strings`);
  }
  return out;
}

function stringList(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) {
    throw new PolicyError(`${where} must be a list of strings`);
  }
  return value as string[];
}

function objectField(value: unknown, where: string): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PolicyError(`${where} must be an object, got ${describe(value)}`);
  }
  return value as JsonObject;
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
