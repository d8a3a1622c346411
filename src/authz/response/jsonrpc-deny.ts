import type { CheckResponse, HeaderValueOption } from '../grpc/check-types.js';
import { RpcCode } from '../grpc/check-types.js';
import { jsonToStruct } from '../grpc/struct.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { JsonRpcId } from '../input/mcp-message.js';
import type { ToolErrorResult } from '../../shared/mcp-tool-errors.js';

/**
 * A refusal in the words of MCP. For a request with an id it is HTTP 200 with a JSON-RPC error for that id:
 * the reference SDKs tear the session down on any non-200, so an agent refused one call could make no other.
 * Without an id (a notification, a client's response, GET, DELETE, a message too broken to read) the HTTP
 * status carries the refusal and the body is a JSON-RPC error with id null.
 */
export interface JsonRpcErrorData {
  /** toolgate's stable code (`policy_denied`, `invalid_arguments`, ...). */
  code: string;
  reasons: string[];
  decision_id: string;
  policy_revision?: string;
  tool?: string;
  details?: unknown;
}

export interface JsonRpcDeny {
  /** The request's id; undefined when there is none to answer. */
  id: JsonRpcId | undefined;
  /** Used when there is no id, or when the refusal must be visible at the HTTP level (401, 400 HeaderMismatch, 413). */
  httpStatus: number;
  forceHttpStatus?: boolean;
  rpcCode: number;
  message: string;
  data: JsonRpcErrorData;
  headers?: Record<string, string[]>;
  decisionId: string;
  dynamicMetadata: JsonObject;
}

const OVERWRITE_OR_ADD = 2;

export function jsonRpcErrorBody(id: JsonRpcId | undefined, rpcCode: number, message: string, data: JsonRpcErrorData): string {
  return JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code: rpcCode, message, data } });
}

export function jsonRpcDenyResponse(d: JsonRpcDeny): CheckResponse {
  const status = d.id !== undefined && !d.forceHttpStatus ? 200 : d.httpStatus;
  const headers: HeaderValueOption[] = [];
  for (const [key, values] of Object.entries(d.headers ?? {})) {
    values.forEach((value, i) => headers.push({ header: { key, value }, append_action: i === 0 ? OVERWRITE_OR_ADD : 0 }));
  }
  headers.push({ header: { key: 'x-toolgate-decision-id', value: d.decisionId }, append_action: OVERWRITE_OR_ADD });
  headers.push({ header: { key: 'content-type', value: 'application/json' }, append_action: OVERWRITE_OR_ADD });
  return {
    status: { code: RpcCode.PERMISSION_DENIED, message: d.message },
    denied_response: { status: { code: status }, headers, body: jsonRpcErrorBody(d.id, d.rpcCode, d.message, d.data) },
    dynamic_metadata: jsonToStruct(d.dynamicMetadata),
  };
}

/**
 * A refusal answered as a tool execution error: HTTP 200 with a JSON-RPC *result* (`isError: true`) for the
 * request's id. For Envoy it is still a denial (the call goes no further); for the client it is the tool's answer.
 */
export function jsonRpcToolErrorResponse(d: { id: JsonRpcId; message: string; result: ToolErrorResult; decisionId: string; dynamicMetadata: JsonObject }): CheckResponse {
  return {
    status: { code: RpcCode.PERMISSION_DENIED, message: d.message },
    denied_response: {
      status: { code: 200 },
      headers: [
        { header: { key: 'x-toolgate-decision-id', value: d.decisionId }, append_action: OVERWRITE_OR_ADD },
        { header: { key: 'content-type', value: 'application/json' }, append_action: OVERWRITE_OR_ADD },
      ],
      body: JSON.stringify({ jsonrpc: '2.0', id: d.id, result: d.result }),
    },
    dynamic_metadata: jsonToStruct(d.dynamicMetadata),
  };
}

/** The message a client shows: what was refused and every reason the policy gave. */
export function policyDenyMessage(what: string, reasons: string[]): string {
  return reasons.length > 0 ? `${what}: ${reasons.join('; ')}` : what;
}
