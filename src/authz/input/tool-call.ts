import { BodyError } from '../../shared/body/body-error.js';
import { parseToolArguments } from '../../shared/body/strict-json.js';
import { Rejection } from '../response/rejection.js';

/**
 * A tool call normalised from whatever protocol carried it. Policies and the executor see only this shape,
 * so adding a protocol (MCP next) means adding an adapter, not touching policies.
 */
export interface ToolCall {
  protocol: string;
  /** MCP: the server the call goes to (`toolgate` or a registered upstream). */
  server?: string;
  tool: string;
  arguments: Record<string, unknown>;
}

export interface HttpRequestView {
  method: string;
  /** parsed_path segments (no query, unescaped). */
  segments: string[];
  /** Strictly decoded UTF-8 body ('' when empty). */
  body: string;
  /** Per-route context extensions set by the platform team in Envoy. */
  contextExtensions: Record<string, string>;
}

export type ProtocolAdapter = (req: HttpRequestView) => ToolCall;

/**
 * REST: `POST /v1/tools/{tool}` with a JSON object of arguments. A route may pin the tool with the context
 * extension `tool` (for a platform-specific path); the body is still the arguments.
 */
export const restAdapter: ProtocolAdapter = (req) => {
  const pinned = req.contextExtensions.tool;
  const s = req.segments;
  const tool = pinned ?? (s.length === 3 && s[0] === 'v1' && s[1] === 'tools' ? s[2] : undefined);
  if (!tool) {
    throw new Rejection('invalid_path', `no tool in path "/${s.join('/')}": tool calls are POST /v1/tools/{tool}`);
  }
  if (req.method !== 'POST') {
    throw new Rejection('method_not_allowed', `tool calls use POST, not ${req.method}`);
  }
  try {
    return { protocol: 'rest', tool, arguments: parseToolArguments(req.body) };
  } catch (err) {
    if (err instanceof BodyError) throw new Rejection('invalid_body', `request body: ${err.message}`);
    throw err;
  }
};

export const PROTOCOL_ADAPTERS: Readonly<Record<string, ProtocolAdapter>> = { rest: restAdapter };
