import type { JsonObject } from '../input/envoy-input.js';
import { PolicyError } from './policy-engine.js';

/** What the policy asked for with an allow: a person must approve this exact call first (issue 18). */
export interface ApprovalRequirement {
  /** Why, in the policy's words: shown to the approver and returned to the agent. */
  reasons: string[];
}

/**
 * Reads `require_approval` from a decision document: `true`, or `{"reason": "..."}` / `{"reasons": [...]}`.
 * Without a reason of its own, the document's `reasons` explain it. `false` or absent: no approval needed.
 * Anything else is the policy's error (fail closed: the check is refused).
 */
export function approvalRequirement(doc: JsonObject, where: string): ApprovalRequirement | undefined {
  const value = doc.require_approval;
  if (value === undefined || value === false) return undefined;
  const fallback = (): string[] => {
    const r = doc.reasons;
    if (typeof r === 'string') return [r];
    if (Array.isArray(r)) return r.filter((x): x is string => typeof x === 'string');
    return [];
  };
  if (value === true) return { reasons: withDefault(fallback()) };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PolicyError(`${where}.require_approval must be true or an object with "reason", got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const obj = value as JsonObject;
  for (const key of Object.keys(obj)) {
    if (key !== 'reason' && key !== 'reasons') throw new PolicyError(`${where}.require_approval has an unknown key "${key}" (expected "reason" or "reasons")`);
  }
  const own: string[] = [];
  if (obj.reason !== undefined) {
    if (typeof obj.reason !== 'string') throw new PolicyError(`${where}.require_approval.reason must be a string`);
    own.push(obj.reason);
  }
  if (obj.reasons !== undefined) {
    if (!Array.isArray(obj.reasons) || !obj.reasons.every((r) => typeof r === 'string')) throw new PolicyError(`${where}.require_approval.reasons must be a list of strings`);
    own.push(...(obj.reasons as string[]));
  }
  return { reasons: withDefault(own.length > 0 ? own : fallback()) };
}

function withDefault(reasons: string[]): string[] {
  return reasons.length > 0 ? [...new Set(reasons)] : ['the policy requires a person to approve this call'];
}
