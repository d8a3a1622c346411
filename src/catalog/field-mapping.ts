import type { FieldSpec } from './catalog-types.js';

/** Sentinel for "no value": the field is then left out of the input rather than set to undefined/null. */
export const ABSENT = Symbol('absent');

/** RFC 6901 JSON pointer lookup; ABSENT when any step is missing. */
export function resolvePointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let cur: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, key)) return ABSENT;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function resolveField(spec: FieldSpec, args: Record<string, unknown>): unknown {
  if (typeof spec !== 'object') return spec;
  const v = resolvePointer(args, spec.from);
  if (v !== ABSENT) return v;
  return 'default' in spec ? spec.default : ABSENT;
}
