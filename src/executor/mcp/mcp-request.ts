import type { IncomingHttpHeaders } from 'node:http';
import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, parseStrictJson } from '../../shared/body/strict-json.js';
import { ATTESTATION_TTL_SECONDS, checkAttestation } from '../../shared/decision-attestation.js';
import type { UsedDecisions } from '../call/used-decisions.js';
import { TRUSTED_HEADERS } from '../../shared/trusted-headers.js';
import { MCP_ERROR, type JsonRpcId } from './mcp-errors.js';
import type { McpSessionIds } from './mcp-session-id.js';

/** One JSON-RPC message as the client sent it (a POST carries exactly one: batches are refused). */
export type McpMessage =
  | { kind: 'request'; id: JsonRpcId; method: string; params: Record<string, unknown> | undefined; body: Record<string, unknown> }
  | { kind: 'notification'; method: string; params: Record<string, unknown> | undefined; body: Record<string, unknown> }
  | { kind: 'response'; body: Record<string, unknown> };

/** What the gateway decided about this request, trusted because its attestation verified. */
export interface VerifiedMcpRequest {
  decisionId: string;
  agentId: string;
  agentMethod: string;
  policyRevision: string;
  /** x-toolgate-mcp-method: the JSON-RPC method, `response`, `GET` or `DELETE`. */
  decided: string;
  /** The client's Mcp-Session-Id, verified as issued to this agent. */
  sessionId: string | undefined;
  /** POST only. */
  message: McpMessage | undefined;
  /** tools/list: the catalog tools the policy lets this agent call. */
  visibleTools: string[];
  /** tools/call: x-toolgate-obligations (attested), when the policy obliged limits. */
  obligations: string | undefined;
}

export interface McpRefusal {
  httpStatus: number;
  id: JsonRpcId | null;
  code: number;
  message: string;
}

/**
 * Checks an MCP request the way the REST handler checks a tool call, before anything acts on it: the decision
 * headers are there, the decided method is the message's own, the tool header names params.name, and the
 * attestation verifies over the bytes the contract says (docs/architecture.md, "Only attested calls run"):
 * tools/call the canonical JSON of the arguments, tools/list the visible-tools header, anything else the body.
 */
export function verifyMcpRequest(
  httpMethod: string,
  headers: IncomingHttpHeaders,
  raw: Buffer,
  deps: { attestationKey: Buffer; sessions: McpSessionIds; usedDecisions: UsedDecisions },
): { ok: true; request: VerifiedMcpRequest } | { ok: false; refusal: McpRefusal } {
  // As the authz server answers refusals: a request with an id gets HTTP 200 and a JSON-RPC error for it (the
  // SDK clients end the session on any other status); without an id the HTTP status carries the refusal.
  const refuse = (httpStatus: number, id: JsonRpcId | null, code: number, message: string): { ok: false; refusal: McpRefusal } => ({
    ok: false,
    refusal: { httpStatus: id !== null && httpStatus === 403 ? 200 : httpStatus, id, code, message },
  });
  const decisionId = header(headers, TRUSTED_HEADERS.decisionId);
  const agentId = header(headers, TRUSTED_HEADERS.agentId);
  const decided = header(headers, TRUSTED_HEADERS.mcpMethod);
  if (!decisionId || !agentId || !decided) {
    return refuse(403, null, MCP_ERROR.notAuthorized, 'this request did not pass the gateway\'s authorization (no decision id, agent or MCP method)');
  }

  let message: McpMessage | undefined;
  if (httpMethod === 'POST') {
    const parsed = parseMessage(raw);
    if ('error' in parsed) return refuse(400, null, parsed.code, parsed.error);
    message = parsed.message;
  }
  const id = message?.kind === 'request' ? message.id : null;
  const own = message ? (message.kind === 'response' ? 'response' : message.method) : httpMethod;
  if (decided !== own) return refuse(403, id, MCP_ERROR.notAuthorized, `the decision was for "${decided}", not "${own}"`);

  let tool = '';
  let attestedBytes: Uint8Array = raw;
  const visibleHeader = header(headers, TRUSTED_HEADERS.visibleTools) ?? '';
  if (message?.kind === 'request' && message.method === 'tools/call') {
    const name = message.params?.name;
    if (typeof name !== 'string') return refuse(400, id, MCP_ERROR.invalidParams, 'tools/call needs params.name, a string');
    tool = name;
    const authorizedTool = header(headers, TRUSTED_HEADERS.tool);
    if (authorizedTool !== tool) return refuse(403, id, MCP_ERROR.notAuthorized, `the decision was for tool "${authorizedTool ?? ''}", not "${tool}"`);
  } else if (message?.kind === 'request' && message.method === 'tools/list') {
    attestedBytes = Buffer.from(visibleHeader, 'utf8');
  }
  // Under the MAC whenever present: the authz server sends it only with a tools/call, so on anything else it fails.
  const obligations = header(headers, TRUSTED_HEADERS.obligations);
  const decision = {
    decisionId,
    agentId,
    agentMethod: header(headers, TRUSTED_HEADERS.agentMethod) ?? '',
    tool,
    policyRevision: header(headers, TRUSTED_HEADERS.policyRevision) ?? '',
    scope: `mcp:${decided}`,
    body: attestedBytes,
    ...(obligations !== undefined ? { obligations } : {}),
  };
  const attested = checkAttestation(deps.attestationKey, decision, header(headers, TRUSTED_HEADERS.attestation), Date.now(), ATTESTATION_TTL_SECONDS);
  if (!attested.ok && (attested.reason === 'expired' || attested.reason === 'not_yet_valid' || attested.reason === 'too_long')) {
    return refuse(403, id, MCP_ERROR.notAuthorized, `the gateway's attestation of this request is not valid now (${attested.reason.replaceAll('_', ' ')}); send it again through the gateway`);
  }
  if (!attested.ok) {
    return refuse(403, id, MCP_ERROR.notAuthorized, 'this request carries no valid attestation from the gateway\'s authorization for this agent, method and content');
  }
  // Each message has a decision of its own, accepted once (as for REST): a captured request sent again is refused.
  if (!deps.usedDecisions.claim(decisionId, attested.expiresAt)) {
    return refuse(403, id, MCP_ERROR.notAuthorized, 'this decision was already used: send the request again through the gateway');
  }

  const sessionId = header(headers, 'mcp-session-id');
  if (sessionId !== undefined && !deps.sessions.verify(agentId, sessionId)) {
    return refuse(404, id, MCP_ERROR.sessionNotFound, 'Session not found: this Mcp-Session-Id was not issued to this agent; initialize again');
  }
  return {
    ok: true,
    request: {
      decisionId,
      agentId,
      agentMethod: decision.agentMethod,
      policyRevision: decision.policyRevision,
      decided,
      sessionId,
      message,
      visibleTools: visibleHeader === '' ? [] : visibleHeader.split(','),
      obligations,
    },
  };
}

function parseMessage(raw: Buffer): { message: McpMessage } | { error: string; code: number } {
  let value: unknown;
  try {
    value = parseStrictJson(decodeUtf8Strict(raw));
  } catch (err) {
    if (err instanceof BodyError) return { error: `Parse error: ${err.message}`, code: MCP_ERROR.parseError };
    throw err;
  }
  if (Array.isArray(value)) return { error: 'JSON-RPC batches are not supported: send one message per request', code: MCP_ERROR.invalidRequest };
  if (typeof value !== 'object' || value === null) return { error: 'a JSON-RPC message is a JSON object', code: MCP_ERROR.invalidRequest };
  const body = value as Record<string, unknown>;
  if (body.jsonrpc !== '2.0') return { error: 'jsonrpc must be "2.0"', code: MCP_ERROR.invalidRequest };
  const params = typeof body.params === 'object' && body.params !== null && !Array.isArray(body.params) ? (body.params as Record<string, unknown>) : undefined;
  if (typeof body.method === 'string') {
    if (!('id' in body)) return { message: { kind: 'notification', method: body.method, params, body } };
    if (typeof body.id === 'string' || (typeof body.id === 'number' && Number.isInteger(body.id))) {
      return { message: { kind: 'request', id: body.id, method: body.method, params, body } };
    }
    return { error: 'a JSON-RPC request id is a string or an integer', code: MCP_ERROR.invalidRequest };
  }
  if ('result' in body || 'error' in body) return { message: { kind: 'response', body } };
  return { error: 'not a JSON-RPC request, notification or response', code: MCP_ERROR.invalidRequest };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
