/**
 * Tool execution errors in the words of MCP (2025-11-25: input validation errors are tool execution errors,
 * so the model sees them and can correct its call). Both sides render them: the executor for what it
 * validates itself, the authz server for a tools/call it refuses before the executor sees it.
 */

/** Where a result's toolgate facts go: `_meta` is MCP's place for implementation data, namespaced. */
export const CALL_META_KEY = 'toolgate.dev/call';

/** One argument that fails the tool's schema: a JSON Pointer into the arguments ('' = the arguments) and why. */
export interface ArgumentFieldError {
  path: string;
  message: string;
}

/** A CallToolResult with `isError: true` (structurally the MCP SDK's type, without depending on it here). */
export interface ToolErrorResult {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  isError: true;
  _meta: Record<string, unknown>;
}

export function toolErrorResult(text: string, meta: Record<string, unknown>): ToolErrorResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: meta };
}

/**
 * Arguments that fail the tool's schema, naming each failing field. `call` adds facts to the `_meta` entry
 * (the authz server adds its decision id and policy revision).
 */
export function invalidArgumentsResult(toolName: string, errors: readonly ArgumentFieldError[], call: Record<string, unknown> = {}): ToolErrorResult {
  const fields = errors.map((e) => `${e.path || '(the arguments)'} ${e.message}`).join('; ');
  return toolErrorResult(`invalid arguments for tool "${toolName}": ${fields}`, {
    [CALL_META_KEY]: { status: 'invalid_arguments', fields: errors.map((e) => ({ path: e.path, message: e.message })), ...call },
  });
}
