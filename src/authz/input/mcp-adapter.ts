import type { ToolCatalog, ToolDefinition } from '../../catalog/tool-catalog.js';
import type { McpServerRegistry } from '../../catalog/mcp-servers.js';
import type { JsonObject } from './envoy-input.js';
import { readMcpMessage, type McpHttpView, type McpMessage } from './mcp-message.js';
import { McpInvalidArguments, McpRejection } from './mcp-rejection.js';
import type { ToolCall } from './tool-call.js';

/** toolgate's own catalog, served as an MCP server by the executor. Never an upstream's name. */
export const TOOLGATE_MCP_SERVER = 'toolgate';

/**
 * MCP -> the same shapes REST produces. Every message becomes `input.mcp`; a `tools/call` also becomes
 * `input.tool_call` plus the flat fields (`action`, `resource`, `namespace`, ...), derived by the tool catalog
 * (server `toolgate`, arguments validated against the tool's JSON Schema exactly as for REST) or by the
 * upstream server's field mapping (src/catalog/mcp-servers.yaml). So one policy governs an operation
 * whichever protocol carried it.
 */
export interface McpMapping {
  message: McpMessage;
  mcp: JsonObject;
  toolCall: ToolCall | undefined;
  /** The catalog tool (server `toolgate` only). */
  tool: ToolDefinition | undefined;
  fields: Record<string, unknown>;
}

export interface McpAdapterOptions {
  catalog: ToolCatalog;
  servers: McpServerRegistry | undefined;
}

export function mapMcpRequest(view: McpHttpView, opts: McpAdapterOptions): McpMapping {
  if (view.server !== TOOLGATE_MCP_SERVER && !opts.servers?.get(view.server)) {
    throw new McpRejection('unknown_mcp_server', `no MCP server named "${view.server}" is registered with this gateway`, undefined);
  }
  const message = readMcpMessage(view);
  const mcp = mcpInput(message);
  if (message.method !== 'tools/call') return { message, mcp, toolCall: undefined, tool: undefined, fields: {} };

  const { id, params } = message;
  const name = params?.name;
  if (typeof name !== 'string' || name === '') throw new McpRejection('invalid_params', 'tools/call needs params.name, the tool to call', id);
  const args = params?.arguments ?? {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw tagged(new McpRejection('invalid_params', `params.arguments of tools/call "${name}" must be an object`, id), name);
  }
  const toolCall: ToolCall = { protocol: 'mcp', server: view.server, tool: name, arguments: args as Record<string, unknown> };

  if (view.server !== TOOLGATE_MCP_SERVER) {
    const fields = opts.servers?.deriveFields(view.server, name, toolCall.arguments) ?? {};
    return { message, mcp, toolCall, tool: undefined, fields };
  }
  const tool = opts.catalog.get(name);
  if (!tool) throw tagged(new McpRejection('unknown_tool', `unknown tool "${name}"`, id), name);
  const errors = opts.catalog.validateArguments(tool, toolCall.arguments);
  if (errors.length > 0) {
    const summary = errors.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
    throw new McpInvalidArguments(name, errors, `arguments for tool "${name}" are invalid: ${summary}`, id);
  }
  return { message, mcp, toolCall, tool, fields: opts.catalog.deriveFields(tool, toolCall.arguments) as Record<string, unknown> };
}

/** `input.mcp`: absent values are left out, as everywhere in the input. */
export function mcpInput(m: McpMessage): JsonObject {
  const out: JsonObject = { method: m.method, server: m.server };
  if (m.id !== undefined) out.id = m.id;
  if (m.params !== undefined) out.params = m.params;
  if (m.protocolVersion !== undefined) out.protocol_version = m.protocolVersion;
  if (m.sessionId !== undefined) out.session_id = m.sessionId;
  return out;
}

function tagged(r: McpRejection, tool: string): McpRejection {
  r.tool = tool;
  return r;
}
