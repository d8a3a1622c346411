import { McpError } from '@modelcontextprotocol/sdk/types.js';

/** The JSON-RPC error an MCP SDK call was refused with; fails when the call succeeded or failed otherwise. */
export async function jsonRpcError(p: Promise<unknown>): Promise<McpError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof McpError) return err;
    throw err;
  }
  throw new Error('expected a JSON-RPC error');
}
