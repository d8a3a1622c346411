/**
 * How two decisions on one input differ: the active (or recorded) one against a candidate's. Shared by the
 * shadow policy (live traffic) and replay (recorded decision logs), so both speak of the same directions.
 */
export type Direction = 'allow_to_deny' | 'deny_to_allow' | 'reasons_changed' | 'candidate_error' | 'candidate_fixes_error';

export type Outcome = { allowed: boolean; reasons: string[] } | { error: string };

export function directionOf(before: Outcome, after: Outcome): Direction | undefined {
  if ('error' in after) return 'error' in before ? undefined : 'candidate_error';
  if ('error' in before) return 'candidate_fixes_error';
  if (before.allowed && !after.allowed) return 'allow_to_deny';
  if (!before.allowed && after.allowed) return 'deny_to_allow';
  if (!before.allowed && !sameSet(before.reasons, after.reasons)) return 'reasons_changed';
  return undefined;
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
