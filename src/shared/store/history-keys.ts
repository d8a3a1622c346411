/**
 * Names of the history keys both sides touch: the authz server adds an allowed call to the agent's calls in
 * flight, the executor removes it when the call ends. `{agent}` is a Redis Cluster hash tag: one agent's
 * keys live in one slot, so one script can touch them all.
 */
export function historyKeyPrefix(keyPrefix: string, agentId: string): string {
  return `${keyPrefix}h:{${agentId}}:`;
}

export function historyInFlightKey(keyPrefix: string, agentId: string): string {
  return `${historyKeyPrefix(keyPrefix, agentId)}inflight`;
}
