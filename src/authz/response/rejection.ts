/**
 * A request that is refused before (or instead of) a policy decision: each has a stable machine-readable
 * code, the HTTP status the agent receives, and a specific message. Thrown by input mapping, turned into a
 * structured deny by the check service.
 */
export const REJECTION_STATUS = {
  unauthenticated: 401,
  invalid_path: 400,
  invalid_body: 400,
  invalid_arguments: 400,
  body_too_large: 413,
  unknown_tool: 404,
  method_not_allowed: 405,
  policy_denied: 403,
  policy_error: 500,
  // The policy reads input.history and the history store did not answer (fail closed; retry later).
  history_unavailable: 503,
  // MCP (JSON-RPC over Streamable HTTP). A refusal that can name the request's id is answered 200 with a
  // JSON-RPC error instead (see jsonrpc-deny.ts); these statuses are for messages without one.
  invalid_jsonrpc: 400,
  invalid_params: 400,
  header_mismatch: 400,
  unknown_mcp_server: 404,
} as const;

export type RejectionCode = keyof typeof REJECTION_STATUS;

export class Rejection extends Error {
  readonly httpStatus: number;
  /** Filled in by input mapping when known, so a refusal is still attributed in logs and metrics. */
  agentId: string | undefined;
  agentAuth: string | undefined;
  tool: string | undefined;
  constructor(
    readonly code: RejectionCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.httpStatus = REJECTION_STATUS[code];
  }
}
