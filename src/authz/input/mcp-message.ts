import { BodyError } from '../../shared/body/body-error.js';
import { parseStrictJson } from '../../shared/body/strict-json.js';
import { McpRejection } from './mcp-rejection.js';

/**
 * One MCP Streamable HTTP request, read the way the policy will see it (`input.mcp`). POST carries one
 * JSON-RPC message (request, notification, or the client's response to a server request); GET opens the
 * server's stream; DELETE ends a session. The body goes through the same strict JSON reader as REST bodies
 * (UTF-8, no duplicate keys, bounded depth), so what the policy reads is what the server will read.
 */
export type JsonRpcId = string | number;

export type McpMessageKind = 'request' | 'notification' | 'response' | 'stream' | 'session_end';

export interface McpMessage {
  kind: McpMessageKind;
  /** The JSON-RPC method; `response` for a client's response, `GET` / `DELETE` for the HTTP-level operations. */
  method: string;
  /** The JSON-RPC id (requests and responses); undefined for notifications, GET and DELETE. */
  id: JsonRpcId | undefined;
  params: Record<string, unknown> | undefined;
  protocolVersion: string | undefined;
  sessionId: string | undefined;
  /** The JSON-RPC message as parsed (undefined for GET and DELETE): `input.parsed_body`. */
  document: Record<string, unknown> | undefined;
  /** The MCP server the route leads to (`toolgate` or a registered upstream's name). */
  server: string;
}

export interface McpHttpView {
  method: string;
  headers: Record<string, string>;
  /** Strictly decoded UTF-8 body ('' when empty). */
  body: string;
  server: string;
}

export const MCP_HEADERS = {
  sessionId: 'mcp-session-id',
  protocolVersion: 'mcp-protocol-version',
  /** 2026-07-28 (stateless): the method and the name the body carries, repeated for intermediaries. */
  method: 'mcp-method',
  name: 'mcp-name',
} as const;

export function readMcpMessage(req: McpHttpView): McpMessage {
  const headerVersion = req.headers[MCP_HEADERS.protocolVersion] || undefined;
  // One literal with every field in one order (not a spread of shared fields: that cost an MCP check more
  // than parsing its 1 KiB body did).
  const message = (kind: McpMessageKind, method: string, id: JsonRpcId | undefined, params: Record<string, unknown> | undefined, document: Record<string, unknown> | undefined, protocolVersion = headerVersion): McpMessage => ({
    kind,
    method,
    id,
    params,
    protocolVersion,
    sessionId: req.headers[MCP_HEADERS.sessionId] || undefined,
    document,
    server: req.server,
  });
  if (req.method === 'GET') return message('stream', 'GET', undefined, undefined, undefined);
  if (req.method === 'DELETE') return message('session_end', 'DELETE', undefined, undefined, undefined);
  if (req.method !== 'POST') {
    throw new McpRejection('method_not_allowed', `MCP over Streamable HTTP uses POST, GET or DELETE, not ${req.method}`, undefined);
  }
  if (req.body.trim() === '') throw new McpRejection('invalid_jsonrpc', 'empty body: a POST carries one JSON-RPC message', undefined, -32700);
  let doc: unknown;
  try {
    doc = parseStrictJson(req.body);
  } catch (err) {
    if (err instanceof BodyError) throw new McpRejection('invalid_jsonrpc', `request body: ${err.message}`, undefined, -32700);
    throw err;
  }
  if (Array.isArray(doc)) {
    throw new McpRejection('invalid_jsonrpc', 'JSON-RPC batches are not supported: send one message per request', undefined, -32600);
  }
  if (doc === null || typeof doc !== 'object') throw new McpRejection('invalid_jsonrpc', 'a JSON-RPC message is a JSON object', undefined, -32600);
  const msg = doc as Record<string, unknown>;
  const id = readId(msg.id);
  if (msg.jsonrpc !== '2.0') throw new McpRejection('invalid_jsonrpc', 'not JSON-RPC 2.0: "jsonrpc" must be "2.0"', id, -32600);

  if (msg.method === undefined) {
    // A client's response to a server request (sampling, elicitation, roots).
    if (id === undefined) throw new McpRejection('invalid_jsonrpc', 'a JSON-RPC message without "method" is a response and needs an "id"', undefined, -32600);
    if (!('result' in msg) && !('error' in msg)) throw new McpRejection('invalid_jsonrpc', 'a JSON-RPC response carries "result" or "error"', undefined, -32600);
    // The id belongs to the server's request, not to anything we could answer: refusals carry no id.
    return message('response', 'response', id, undefined, msg);
  }
  if (typeof msg.method !== 'string' || msg.method === '') throw new McpRejection('invalid_jsonrpc', '"method" must be a non-empty string', id, -32600);
  const method = msg.method;
  let params: Record<string, unknown> | undefined;
  if (msg.params !== undefined) {
    if (msg.params === null || typeof msg.params !== 'object' || Array.isArray(msg.params)) {
      throw new McpRejection('invalid_params', `"params" of ${method} must be an object`, id);
    }
    params = msg.params as Record<string, unknown>;
  }
  const isNotification = method.startsWith('notifications/');
  if (id === undefined && !isNotification) {
    throw new McpRejection('invalid_jsonrpc', `request ${method} has no "id" (only notifications/* may omit it)`, undefined, -32600);
  }
  if (id !== undefined && isNotification) {
    throw new McpRejection('invalid_jsonrpc', `${method} is a notification and must not carry an "id"`, undefined, -32600);
  }
  checkHeadersAgree(req.headers, method, params, id);
  const protocolVersion = method === 'initialize' && typeof params?.protocolVersion === 'string' ? params.protocolVersion : headerVersion;
  return message(isNotification ? 'notification' : 'request', method, id, params, msg, protocolVersion);
}

/** The name a method acts on, as the `Mcp-Name` header repeats it. */
export function mcpNameOf(method: string, params: Record<string, unknown> | undefined): string | undefined {
  const v = method.startsWith('resources/') ? params?.uri : params?.name;
  return typeof v === 'string' ? v : undefined;
}

/** 2026-07-28: headers that disagree with the body would let an intermediary route on one thing and run another. */
function checkHeadersAgree(headers: Record<string, string>, method: string, params: Record<string, unknown> | undefined, id: JsonRpcId | undefined): void {
  const hMethod = headers[MCP_HEADERS.method];
  if (hMethod !== undefined && hMethod !== method) {
    throw new McpRejection('header_mismatch', `HeaderMismatch: Mcp-Method header "${hMethod}" disagrees with the body's method "${method}"`, id);
  }
  const hName = headers[MCP_HEADERS.name];
  if (hName !== undefined) {
    const name = mcpNameOf(method, params);
    if (hName !== name) {
      throw new McpRejection('header_mismatch', `HeaderMismatch: Mcp-Name header "${hName}" disagrees with the body's ${name === undefined ? 'missing name' : `name "${name}"`}`, id);
    }
  }
}

function readId(v: unknown): JsonRpcId | undefined {
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (v === undefined || v === null) return undefined;
  throw new McpRejection('invalid_jsonrpc', `"id" must be a string or a number, got ${Array.isArray(v) ? 'an array' : typeof v}`, undefined, -32600);
}
