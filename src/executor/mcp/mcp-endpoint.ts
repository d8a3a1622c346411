import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { errorMessage } from '../../shared/logger.js';
import type { UsedDecisions } from '../call/used-decisions.js';
import { BodyTooLargeError, readBody } from '../http/read-body.js';
import { MCP_ERROR, sendJsonRpcError } from './mcp-errors.js';
import type { McpInFlight } from './mcp-in-flight.js';
import { originAllowed } from './mcp-origin.js';
import { verifyMcpRequest, type McpMessage, type VerifiedMcpRequest } from './mcp-request.js';
import type { McpSessionIds } from './mcp-session-id.js';
import { listedTools } from './mcp-tool-results.js';
import { handleToolCall, type McpToolCallDeps } from './mcp-tool-call.js';

export const MCP_PATH = '/mcp';

export interface McpEndpointDeps extends McpToolCallDeps {
  attestationKey: Buffer;
  /** Shared with the REST front end: a decision is accepted once. */
  usedDecisions: UsedDecisions;
  maxBodyBytes: number;
  sessions: McpSessionIds;
  inFlight: McpInFlight;
  serverInfo: { name: string; version: string };
  /** Browser origins allowed besides loopback ones (see mcp-origin.ts). */
  allowedOrigins: readonly string[];
}

/** True for the executor's own MCP endpoint (`/mcp`, any query); upstream servers' `/mcp/<name>` never reach it. */
export function isMcpPath(url: string | undefined): boolean {
  if (!url) return false;
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)) === MCP_PATH;
}

const INSTRUCTIONS =
  'toolgate runs each tool call once, in its own short-lived sandbox or Kubernetes Job, after the gateway\'s policy allowed it. ' +
  'tools/list shows only the tools the policy lets you call. Send a progressToken to follow a call; cancel it with notifications/cancelled.';

/**
 * The catalog as an MCP server (Streamable HTTP), one more front end of the executor's call path. Each POST is
 * served by a server instance of its own, in the SDK's stateless mode: the executor keeps no session state, so
 * any replica can answer any request (docs/agents.md). What a session needs to mean is carried by the request:
 * the agent and the decision by the attested headers, the session by a self-verifying Mcp-Session-Id.
 */
export function createMcpEndpoint(deps: McpEndpointDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // The SDK's Server makes a JSON Schema validator (a new Ajv) per instance unless given one; it is used only to
  // check elicitation answers, which this server never asks for. One shared: an Ajv per request was ~0.6 ms.
  const validator = new AjvJsonSchemaValidator();
  return async (req, res) => {
    const method = req.method ?? '';
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return sendJsonRpcError(res, 405, null, MCP_ERROR.invalidRequest, `MCP uses POST (and GET, DELETE), not ${method}`, undefined, { allow: 'POST, GET, DELETE' });
    }
    const origin = header(req, 'origin');
    if (!originAllowed(origin, header(req, 'host'), deps.allowedOrigins)) {
      deps.log.warn('MCP request refused: origin not allowed', { origin, host: header(req, 'host') });
      return sendJsonRpcError(res, 403, null, MCP_ERROR.notAuthorized, `requests from the web origin ${origin ?? ''} are not allowed here`);
    }
    let raw: Buffer = Buffer.alloc(0);
    if (method === 'POST') {
      try {
        raw = await readBody(req, deps.maxBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) return sendJsonRpcError(res, 413, null, MCP_ERROR.invalidRequest, err.message);
        throw err;
      }
    }
    const verified = verifyMcpRequest(method, req.headers, raw, deps);
    if (!verified.ok) {
      const f = verified.refusal;
      deps.log.warn('MCP request refused', { http_method: method, http_status: f.httpStatus, code: f.code, message: f.message });
      return sendJsonRpcError(res, f.httpStatus, f.id, f.code, f.message);
    }
    const r = verified.request;
    if (!r.message) {
      // GET would open a stream for messages outside responses, DELETE would end session state: this server has
      // neither (nothing is sent unasked; sessions hold no state), and MCP lets a server answer both with 405.
      return sendJsonRpcError(res, 405, null, MCP_ERROR.invalidRequest, `this MCP server has no ${method === 'GET' ? 'server-to-client stream' : 'session state to end'}; use POST`, undefined, { allow: 'POST' });
    }
    const message = r.message;
    if (message.kind !== 'request') {
      if (message.kind === 'notification' && message.method === 'notifications/cancelled') cancelNamedCall(deps, r, message);
      // notifications/initialized, other notifications and responses: nothing to do (this server sends no requests).
      res.writeHead(202).end();
      return;
    }
    await serveRequest(deps, r, message, req, res, validator);
  };
}

async function serveRequest(
  deps: McpEndpointDeps,
  r: VerifiedMcpRequest,
  message: Extract<McpMessage, { kind: 'request' }>,
  req: IncomingMessage,
  res: ServerResponse,
  jsonSchemaValidator: AjvJsonSchemaValidator,
): Promise<void> {
  const server = new Server(deps.serverInfo, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS, jsonSchemaValidator });
  // A tool call streams (progress, keep-alives during a long run); anything else is one JSON answer.
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: message.method !== 'tools/call' });
  const close = (): void => {
    void server.close().catch(() => undefined);
  };
  server.onerror = (err) => deps.log.debug('MCP server instance error', { method: message.method, cause: errorMessage(err) });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listedTools(deps.catalog, r.visibleTools) }));
  server.setRequestHandler(CallToolRequestSchema, (_request, extra) =>
    handleToolCall(deps, r, { id: message.id, params: message.params, idempotencyKey: header(req, 'idempotency-key'), traceparent: header(req, 'traceparent') }, res, extra, close),
  );
  res.on('close', close);
  await server.connect(transport);
  if (message.method === 'initialize') res.setHeader('mcp-session-id', deps.sessions.issue(r.agentId));
  await transport.handleRequest(req, res, message.body);
}

function cancelNamedCall(deps: McpEndpointDeps, r: VerifiedMcpRequest, message: Extract<McpMessage, { kind: 'notification' }>): void {
  const requestId = message.params?.requestId;
  if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
  const reason = typeof message.params?.reason === 'string' ? message.params.reason : 'cancelled by the client';
  const found = deps.inFlight.cancel(r.agentId, r.sessionId, requestId, reason);
  // Not found: the call already ended, or another replica answers it (docs/agents.md: session affinity).
  if (!found) deps.log.info('notifications/cancelled for no call in flight here', { agent_id: r.agentId, request_id: requestId });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
