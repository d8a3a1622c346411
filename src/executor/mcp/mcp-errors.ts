import type { ServerResponse } from 'node:http';

/**
 * JSON-RPC error codes the executor's MCP server answers with, besides the standard ones (-32700 parse error,
 * -32600 invalid request, -32601 method not found, -32602 invalid params). Server-defined codes sit in the
 * range JSON-RPC reserves for implementations (-32000 to -32099).
 */
export const MCP_ERROR = {
  parseError: -32700,
  invalidRequest: -32600,
  invalidParams: -32602,
  internalError: -32603,
  /** The SDKs' code for an unknown or expired Mcp-Session-Id (with HTTP 404). */
  sessionNotFound: -32001,
  /** Not attested by the gateway's authorization (should not occur behind Envoy). */
  notAuthorized: -32003,
  /** Backpressure, as REST's 429: `data.retry_after_seconds` says when to retry. */
  tooManyCalls: -32029,
  /** A retry (same session and request id, or Idempotency-Key) with other arguments, as REST's 422 (not -32022: MCP uses it for an unsupported protocol version). */
  idempotencyConflict: -32009,
} as const;

export type JsonRpcId = string | number;

/** A JSON-RPC error as a whole HTTP response (the transport never saw the request). */
export function sendJsonRpcError(res: ServerResponse, httpStatus: number, id: JsonRpcId | null, code: number, message: string, data?: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data ? { data } : {}) } });
  res.writeHead(httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
