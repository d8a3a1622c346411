/**
 * What the executor writes on a local sandbox's stdin (TOOL_CALL_STDIN=1): everything that is known only
 * when a call arrives. The sandbox itself was started for the tool (its name, network, limits, clear
 * environment), possibly before the call existed (the sandbox pool), so the call's identity, its trace
 * context and its arguments all come this way, on a pipe only that one process reads, and never on bwrap's
 * command line or in an environment.
 */
export interface SandboxCall {
  call_id: string;
  /** W3C traceparent of the executor's run span: the runner's spans join the call's trace. */
  traceparent?: string;
  arguments: Record<string, unknown>;
}

/** Environment variable naming the file descriptor on which a waiting runner says it is ready (one line). */
export const READY_FD_ENV = 'TOOL_READY_FD';

/** What a waiting runner writes on its ready descriptor once everything before the call is done. */
export const READY_LINE = 'ready\n';

/**
 * What the runner writes on the same descriptor once it has read its call, before the tool runs: a sandbox
 * that dies without having said so never ran its call (so the call may be given to another sandbox).
 */
export const CALL_RECEIVED_LINE = 'call\n';

/**
 * What the runner writes on it once its result envelope is entirely on stdout: the call is over, and its
 * result need not wait for the process's exit (through bwrap's two processes, the slowest part of a
 * pooled call on a busy machine).
 */
export const REPORTED_LINE = 'reported\n';

export function isSandboxCall(v: unknown): v is SandboxCall {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const c = v as Record<string, unknown>;
  if (typeof c.call_id !== 'string' || c.call_id === '') return false;
  if (c.traceparent !== undefined && typeof c.traceparent !== 'string') return false;
  return c.arguments !== null && typeof c.arguments === 'object' && !Array.isArray(c.arguments);
}
