import type { JsonRpcId } from './mcp-errors.js';

/**
 * The MCP tool calls this executor is answering, by (agent, session, request id), so that a
 * notifications/cancelled (its own POST, handled by its own short-lived server instance) reaches the call it
 * names. Only the agent that made a call can cancel it: the agent comes from the attested headers.
 */
export class McpInFlight {
  private readonly calls = new Map<string, (reason: string) => void>();

  /** Registers a call; the returned function unregisters it. */
  add(agentId: string, sessionId: string | undefined, requestId: JsonRpcId, cancel: (reason: string) => void): () => void {
    const key = keyOf(agentId, sessionId, requestId);
    this.calls.set(key, cancel);
    return () => {
      if (this.calls.get(key) === cancel) this.calls.delete(key);
    };
  }

  /** Cancels the call if this executor is answering it; false when it is not (finished, or another replica's). */
  cancel(agentId: string, sessionId: string | undefined, requestId: JsonRpcId, reason: string): boolean {
    const cancel = this.calls.get(keyOf(agentId, sessionId, requestId));
    cancel?.(reason);
    return cancel !== undefined;
  }

  get size(): number {
    return this.calls.size;
  }
}

function keyOf(agentId: string, sessionId: string | undefined, requestId: JsonRpcId): string {
  // The id's type is part of it: JSON-RPC ids 1 and "1" are different requests.
  return JSON.stringify([agentId, sessionId ?? '', typeof requestId, String(requestId)]);
}
