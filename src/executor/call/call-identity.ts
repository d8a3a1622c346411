/**
 * What makes two requests the same call. With an Idempotency-Key: the key, scoped to the agent and the tool
 * (a key is the agent's, per endpoint). Without: the gateway's decision id, which only the authz server
 * sets (client copies are stripped) and which Envoy keeps across its own retries of the request; never a
 * header the client chooses, such as x-request-id.
 */
export function callIdentity(agentId: string, tool: string, decisionId: string, idempotencyKey: string | undefined): string {
  return JSON.stringify(idempotencyKey ? ['idempotency-key', agentId, tool, idempotencyKey] : ['decision', decisionId]);
}

/**
 * An MCP tools/call's identity. An Idempotency-Key header means what it means for REST (the same key for the
 * same tool is the same call, whichever front end carried it). Otherwise, within a session, the JSON-RPC
 * request id: the protocol forbids reusing one in a session, so a POST that comes again with the same session
 * and id is a retry (and other arguments under it are a conflict). Without either, the decision id, as REST.
 */
export function mcpCallIdentity(c: { agentId: string; tool: string; decisionId: string; idempotencyKey: string | undefined; sessionId: string | undefined; requestId: string | number }): string {
  if (c.idempotencyKey || !c.sessionId) return callIdentity(c.agentId, c.tool, c.decisionId, c.idempotencyKey);
  // The id's type is part of it: JSON-RPC ids 1 and "1" are different requests.
  return JSON.stringify(['mcp-request', c.agentId, c.sessionId, c.tool, typeof c.requestId, String(c.requestId)]);
}
