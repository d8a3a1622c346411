import type { ArgumentFieldError } from '../../shared/mcp-tool-errors.js';
import { Rejection, type RejectionCode } from '../response/rejection.js';
import type { JsonRpcId } from './mcp-message.js';

/**
 * A refusal of an MCP message, answered in JSON-RPC: the request's id when there is one (so the client's
 * session survives it), and the JSON-RPC error code MCP clients expect for the kind of fault.
 */
export const JSON_RPC_CODES: Readonly<Partial<Record<RejectionCode, number>>> = {
  invalid_jsonrpc: -32600,
  invalid_params: -32602,
  invalid_arguments: -32602,
  unknown_tool: -32602,
  unknown_mcp_server: -32601,
  method_not_allowed: -32600,
  invalid_body: -32700,
  body_too_large: -32600,
  // Not in JSON-RPC's reserved range: an authorization refusal is an application error.
  unauthenticated: -32001,
  header_mismatch: -32001,
  policy_denied: -32003,
  policy_error: -32603,
  history_unavailable: -32603,
};

export class McpRejection extends Rejection {
  readonly rpcCode: number;
  constructor(code: RejectionCode, message: string, readonly jsonRpcId: JsonRpcId | undefined, rpcCode?: number, details?: unknown) {
    super(code, message, details);
    this.rpcCode = rpcCode ?? JSON_RPC_CODES[code] ?? -32603;
  }

  /** A plain refusal raised on an MCP route (identity, body size) re-expressed in JSON-RPC. */
  static from(r: Rejection, id: JsonRpcId | undefined): McpRejection {
    if (r instanceof McpRejection) return r;
    const m = new McpRejection(r.code, r.message, id, undefined, r.details);
    m.agentId = r.agentId;
    m.agentAuth = r.agentAuth;
    m.tool = r.tool;
    return m;
  }
}

/**
 * Arguments of a tools/call to toolgate's own server that fail the catalog's schema. Still a refusal (logged,
 * counted and audited as `invalid_arguments`; never reaches the executor), but a request with an id is
 * answered as MCP says: a tool execution error naming the fields, so the model can correct its call.
 */
export class McpInvalidArguments extends McpRejection {
  constructor(readonly toolName: string, readonly fields: readonly ArgumentFieldError[], message: string, id: JsonRpcId | undefined) {
    super('invalid_arguments', message, id, undefined, fields);
    this.tool = toolName;
  }
}
