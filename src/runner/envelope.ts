/**
 * What the tool runner reports for its one call. The executor accepts it only for the call id it expects,
 * over a channel bound to that call (the sandbox's stdout pipe, or a per-call bearer token for Jobs).
 */
export type ResultEnvelope =
  | { call_id: string; status: 'ok'; result: unknown }
  | { call_id: string; status: 'error'; error: { message: string; code?: string } };

export const MAX_RESULT_BYTES = 1024 * 1024;

/** A failure a tool reports on purpose (bad input, not found, forbidden), as opposed to a crash. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly code = 'tool_error',
  ) {
    super(message);
  }
}

export function isResultEnvelope(v: unknown): v is ResultEnvelope {
  if (v === null || typeof v !== 'object') return false;
  const e = v as Record<string, unknown>;
  if (typeof e.call_id !== 'string') return false;
  if (e.status === 'ok') return 'result' in e;
  if (e.status === 'error') return typeof (e.error as { message?: unknown } | undefined)?.message === 'string';
  return false;
}
