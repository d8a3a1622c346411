import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, parseStrictJson } from '../../shared/body/strict-json.js';
import type { JsonRpcId } from '../input/mcp-message.js';

/**
 * What an upstream MCP server may answer to one message over Streamable HTTP, judged first from the response
 * headers (cheap: every answer pays for it) and, only for a JSON body, from the body. An event stream is never
 * read: it streams to the client as it comes (a stream that ends without the response is left to the client
 * SDK, which reports it as its own error; buffering every stream would break streaming).
 */
export interface AnsweredRequest {
  server: string;
  /** The JSON-RPC request's id; undefined for a notification, a client's response, DELETE. */
  id: JsonRpcId | undefined;
}

export type HeadersVerdict =
  | { kind: 'pass' }
  | { kind: 'read_body' }
  | { kind: 'garbage'; reason: string; httpStatus: number };

export function judgeHeaders(req: AnsweredRequest, status: number, contentType: string | undefined): HeadersVerdict {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const what = `HTTP ${status} ${type === '' ? 'without a content type' : type}`;
  if (req.id === undefined) {
    // Nothing to answer for: 202/2xx and the 4xx MCP defines (404 session gone, 405 no DELETE) pass; a
    // server error that is not JSON becomes the documented 502 (JSON error, id null).
    if (status < 500 || type === 'application/json') return { kind: 'pass' };
    return { kind: 'garbage', reason: `answered ${what}`, httpStatus: 502 };
  }
  if (type === 'application/json') return { kind: 'read_body' };
  if (type === 'text/event-stream' && status >= 200 && status < 300) return { kind: 'pass' };
  // A request with an id always gets a JSON-RPC answer; 404 keeps its status (MCP: the client must start a
  // new session), every other garbage is HTTP 200 (MCP clients drop their session on other statuses).
  const reason = status === 202 ? 'answered HTTP 202 (accepted, no response) to a request' : `answered ${what}, not a JSON-RPC response`;
  return { kind: 'garbage', reason, httpStatus: status === 404 ? 404 : 200 };
}

/** undefined when the body is a JSON-RPC response for the request's id (or an error with id null); else why not. */
export function judgeJsonBody(req: AnsweredRequest, bytes: Uint8Array): string | undefined {
  let doc: unknown;
  try {
    doc = parseStrictJson(decodeUtf8Strict(bytes));
  } catch (err) {
    const why = err instanceof BodyError ? err.message : String(err);
    return bytes.length === 0 ? 'answered application/json with an empty body' : `answered application/json that is not JSON (${why})`;
  }
  if (doc === null || typeof doc !== 'object') return 'answered JSON that is not a JSON-RPC message';
  if (Array.isArray(doc)) return 'answered a JSON array (a batch), not one JSON-RPC response';
  const msg = doc as Record<string, unknown>;
  if (msg.jsonrpc !== '2.0') return 'answered JSON that is not a JSON-RPC 2.0 message';
  const hasResult = 'result' in msg;
  const hasError = 'error' in msg;
  if (hasResult === hasError) return typeof msg.method === 'string' ? `answered a JSON-RPC ${'id' in msg ? 'request' : 'notification'} (${msg.method}), not the response` : 'answered a JSON-RPC message with neither a result nor an error';
  if (hasError) {
    const e = msg.error as Record<string, unknown> | null;
    if (!e || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string') return 'answered a JSON-RPC error without an integer code and a message';
    if (msg.id === null) return undefined;
  }
  if (!sameId(msg.id, req.id)) return `answered the response for id ${JSON.stringify(msg.id) ?? 'undefined'}, not for id ${JSON.stringify(req.id)}`;
  if (hasResult && (msg.result === null || typeof msg.result !== 'object' || Array.isArray(msg.result))) return 'answered a JSON-RPC result that is not an object';
  return undefined;
}

function sameId(a: unknown, b: JsonRpcId | undefined): boolean {
  return a === b;
}
