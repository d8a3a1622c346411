import type { Obligations } from '../../shared/obligations.js';
import type { Logger } from '../../shared/logger.js';

/** One structured line per Check: enough to answer "what did this agent ask and why was it (not) allowed". */
export interface DecisionRecord {
  decision_id: string;
  request_id: string | undefined;
  trace_id: string | undefined;
  agent_id: string | undefined;
  agent_auth: string | undefined;
  tool: string | undefined;
  action: string | undefined;
  resource: string | undefined;
  namespace: string | undefined;
  allowed: boolean;
  /** False when the caller stopped waiting (deadline, cancel) before the answer: it was never enforced. */
  applied: boolean;
  result: 'allowed' | 'denied' | 'error' | 'abandoned';
  code: string | undefined;
  reasons: string[];
  policy_revision: string | undefined;
  engine: string;
  evaluation_ms: number | undefined;
  duration_ms: number;
  http_status: number;
  cause?: string;
  /** An allowed tool call's obligations (the limits its execution must apply), as sent to the executor. */
  obligations?: Obligations;
  /** MCP messages: what was decided, on which server, in which session (absent for REST). */
  /** Approvals (issue 18): the approval this call ran on (consumed), or is held for (pending), or that rejected it. */
  approval?: { id: string; status: 'consumed' | 'pending' | 'rejected'; created?: boolean };
  mcp?: { method: string; server: string; jsonrpc_id?: string | number; session_id?: string; protocol_version?: string };
}

export function logDecision(log: Logger, record: DecisionRecord): void {
  if (record.result === 'error') log.error('decision', { ...record });
  else log.info('decision', { ...record });
}

/** The trace id of a W3C traceparent ("00-<trace-id>-<span-id>-<flags>"). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (!traceparent) return undefined;
  const parts = traceparent.split('-');
  return parts.length >= 4 && parts[1]?.length === 32 ? parts[1] : undefined;
}
