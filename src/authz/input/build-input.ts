import type { McpServerRegistry } from '../../catalog/mcp-servers.js';
import type { ToolCatalog, ToolDefinition } from '../../catalog/tool-catalog.js';
import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, sourceTextIsExact } from '../../shared/body/strict-json.js';
import type { AttributeContext, CheckRequest } from '../grpc/check-types.js';
import { Rejection } from '../response/rejection.js';
import { AgentIdError, refusedJwt, resolveAgentIdentity, type AgentIdentity, type IdentityOptions } from './agent-identity.js';
import { attributesToJson, INPUT_VERSION, metadataToJson, type JsonObject } from './envoy-input.js';
import { SHARE_FROM_BYTES, type SharedJsonValue } from './input-json.js';
import { mapMcpRequest, TOOLGATE_MCP_SERVER } from './mcp-adapter.js';
import type { McpMessage } from './mcp-message.js';
import { McpRejection } from './mcp-rejection.js';
import { parseRequestBody } from './parsed-body.js';
import { parsePath, parseQuery, PathError, splitPathAndQuery } from './parsed-path.js';
import { PROTOCOL_ADAPTERS, type ProtocolAdapter, type ToolCall } from './tool-call.js';

/**
 * request -> OPA input. The result is a superset of what the OPA Envoy plugin builds (same names, same
 * parsing), plus the agent fields: `agent` (verified identity), `tool_call` (normalised call) and the flat
 * fields the tool catalog derives (`agent_id`, `action`, `resource`, `namespace`, tool-specific ones).
 */
export interface MappedRequest {
  input: JsonObject;
  agent: AgentIdentity | undefined;
  toolCall: ToolCall | undefined;
  tool: ToolDefinition | undefined;
  /** Flat fields as derived from the catalog ({} when not a tool call). */
  fields: Record<string, unknown>;
  /** The MCP message, when the route speaks MCP (`input.mcp`). */
  mcp: McpMessage | undefined;
  /** The tool arguments' JSON, written once when encoding the input (see input-json.ts). */
  rawArguments: SharedJsonValue | undefined;
}

export interface InputMapperOptions {
  catalog: ToolCatalog;
  identity: IdentityOptions;
  /** Upstream MCP servers (field mapping of their tools); none registered when absent. */
  servers?: McpServerRegistry;
}

/** Header Envoy adds when with_request_body.allow_partial_message cut the body at max_request_bytes. */
const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

export function mapCheckRequest(req: CheckRequest, opts: InputMapperOptions): MappedRequest {
  const protocol = req.attributes?.context_extensions?.protocol ?? 'rest';
  try {
    return mapProtocol(req, opts, protocol);
  } catch (err) {
    // On an MCP route every refusal is answered in JSON-RPC, even one raised before the message was read.
    if (protocol === 'mcp' && err instanceof Rejection) throw McpRejection.from(err, undefined);
    throw err;
  }
}

function mapProtocol(req: CheckRequest, opts: InputMapperOptions, protocol: string): MappedRequest {
  const attrs = req.attributes ?? {};
  const http = attrs.request?.http ?? {};
  const ext = attrs.context_extensions ?? {};

  const { pathOnly, rawQuery } = splitPathAndQuery(http.path ?? '');
  let segments: string[];
  try {
    segments = parsePath(pathOnly);
  } catch (err) {
    if (err instanceof PathError) throw new Rejection('invalid_path', err.message);
    throw err;
  }

  const metadata = metadataToJson(attrs.metadata_context);
  const principal = attrs.source?.principal || undefined;
  let agent: AgentIdentity | undefined;
  try {
    agent = resolveAgentIdentity(principal, metadata?.filterMetadata as JsonObject | undefined, opts.identity);
  } catch (err) {
    if (err instanceof AgentIdError) throw new Rejection('unauthenticated', err.message);
    throw err;
  }
  const isMcp = protocol === 'mcp';
  const adapter = protocol === 'http' || isMcp ? undefined : PROTOCOL_ADAPTERS[protocol];
  if (protocol !== 'http' && !isMcp && !adapter) {
    // A route misconfiguration, not the agent's fault, but still fail closed with a precise cause.
    throw new Rejection('invalid_path', `route declares unknown protocol "${protocol}" in context_extensions`);
  }
  const jwtRefused = refusedJwt(metadata?.filterMetadata as JsonObject | undefined, opts.identity);
  if (jwtRefused) {
    const hint = isMcp ? ": an MCP token's audience must be this gateway's MCP resource (see its protected resource metadata)" : '';
    throw new Rejection('unauthenticated', `the presented JWT was refused (${jwtRefused})${hint}`);
  }
  if ((adapter || isMcp) && !agent) {
    throw new Rejection(
      'unauthenticated',
      'no verified agent identity: present a client certificate (mTLS) or a JWT accepted by the gateway',
    );
  }

  try {
    return mapAuthenticated(attrs, { segments, rawQuery, principal, agent, adapter, isMcp, ext }, opts);
  } catch (err) {
    if (err instanceof Rejection) {
      err.agentId = agent?.id;
      err.agentAuth = agent?.method;
    }
    throw err;
  }
}

interface RequestBasics {
  segments: string[];
  rawQuery: string;
  principal: string | undefined;
  agent: AgentIdentity | undefined;
  adapter: ProtocolAdapter | undefined;
  isMcp: boolean;
  ext: Record<string, string>;
}

function mapAuthenticated(attrs: AttributeContext, basics: RequestBasics, opts: InputMapperOptions): MappedRequest {
  const { segments, rawQuery, principal, agent, adapter, isMcp, ext } = basics;
  const http = attrs.request?.http ?? {};
  const headers = http.headers ?? {};
  const body = decodeBody(http.raw_body, http.body);
  // Envoy flags a cut body, except one that filled max_request_bytes exactly with more still to come: a
  // content-length beyond what arrived says so too (a chunked body of exactly the limit cannot be told).
  const declared = Number(headers['content-length']);
  const received = http.raw_body && http.raw_body.length > 0 ? http.raw_body.length : Buffer.byteLength(body);
  const truncated = headers[PARTIAL_BODY_HEADER] === 'true' || (Number.isSafeInteger(declared) && declared > received);
  if (truncated) {
    throw new Rejection('body_too_large', `request body exceeds the gateway's limit (${Buffer.byteLength(body)} bytes received before the cut)`);
  }

  let toolCall: ToolCall | undefined;
  let tool: ToolDefinition | undefined;
  let fields: Record<string, unknown> = {};
  let mcp: McpMessage | undefined;
  let mcpInput: JsonObject | undefined;
  if (isMcp) {
    const server = ext.mcp_server ?? TOOLGATE_MCP_SERVER;
    const mapped = mapMcpRequest({ method: http.method ?? '', headers, body, server }, { catalog: opts.catalog, servers: opts.servers });
    ({ toolCall, tool, fields } = mapped);
    mcp = mapped.message;
    mcpInput = mapped.mcp;
  } else if (adapter) {
    toolCall = adapter({ method: http.method ?? '', segments, body, contextExtensions: ext });
    tool = opts.catalog.get(toolCall.tool);
    if (!tool) throw withTool(new Rejection('unknown_tool', `unknown tool "${toolCall.tool}"`), toolCall.tool);
    const errors = opts.catalog.validateArguments(tool, toolCall.arguments);
    if (errors.length > 0) {
      const summary = errors.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
      throw withTool(new Rejection('invalid_arguments', `arguments for tool "${tool.name}" are invalid: ${summary}`, errors), tool.name);
    }
    fields = opts.catalog.deriveFields(tool, toolCall.arguments) as Record<string, unknown>;
  }

  const input: JsonObject = {
    attributes: attributesToJson(attrs, body),
    version: INPUT_VERSION,
    parsed_path: segments,
    parsed_query: parseQuery(rawQuery),
    truncated_body: false,
  };
  // MCP: parsed_body is the JSON-RPC message, as the OPA Envoy plugin would give it.
  const parsedBody = mcp ? mcp.document : toolCall ? toolCall.arguments : parsePluginBody(headers['content-type'], body);
  if (parsedBody !== undefined) input.parsed_body = parsedBody;
  if (principal) input.source_principal = principal;
  if (agent) {
    input.agent = agent;
    input.agent_id = agent.id;
  }
  if (mcpInput) input.mcp = mcpInput;
  if (toolCall) {
    input.tool_call = toolCall;
    Object.assign(input, fields);
  }
  // REST: the arguments are the whole body (other protocols carry them inside an envelope), reusable as their
  // JSON only when the policy would read exactly the values the tool runs with.
  const rawBody = (): Buffer => (http.raw_body && http.raw_body.length > 0 ? withoutBom(http.raw_body) : Buffer.from(body));
  let rawArguments: SharedJsonValue | undefined;
  // Small bodies: one JSON.stringify of the whole input is cheaper (input-json.ts).
  const worthSharing = received >= SHARE_FROM_BYTES;
  if (worthSharing && toolCall?.protocol === 'rest') {
    const json = sourceTextIsExact(toolCall.arguments) ? rawBody() : Buffer.from(JSON.stringify(toolCall.arguments));
    rawArguments = { value: toolCall.arguments, json, containers: new Set([toolCall]) };
  }
  // MCP tools/call: the arguments stand in the message (parsed_body.params), in input.mcp.params and in tool_call.
  // Written once, as JSON.stringify writes the parsed value (what the policy reads at each place).
  if (worthSharing && mcp?.document && toolCall && mcpInput) {
    const json = Buffer.from(JSON.stringify(toolCall.arguments));
    rawArguments = { value: toolCall.arguments, json, containers: new Set([mcp.document, (mcp.document as { params?: unknown }).params, mcpInput, mcpInput.params, toolCall]) };
  }
  return { input, agent, toolCall, tool, fields, mcp, rawArguments };
}

/** The strict decoder drops a UTF-8 byte order mark; so must the bytes reused as JSON. */
function withoutBom(raw: Buffer): Buffer {
  return raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? raw.subarray(3) : raw;
}

function withTool(rejection: Rejection, tool: string): Rejection {
  rejection.tool = tool;
  return rejection;
}

function decodeBody(raw: Buffer | undefined, text: string | undefined): string {
  if (raw && raw.length > 0) {
    try {
      return decodeUtf8Strict(raw);
    } catch (err) {
      if (err instanceof BodyError) throw new Rejection('invalid_body', `request body: ${err.message}`);
      throw err;
    }
  }
  return text ?? '';
}

function parsePluginBody(contentType: string | undefined, body: string): unknown {
  if (body === '') return undefined;
  try {
    return parseRequestBody({ contentType, body, truncated: false }).parsedBody;
  } catch (err) {
    if (err instanceof BodyError) throw new Rejection('invalid_body', `request body: ${err.message}`);
    throw err;
  }
}
