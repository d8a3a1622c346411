/**
 * `input.history`: what the calling agent has just been doing, for policies (loop guards, budgets, rate
 * limits). Counts are of the checks BEFORE this one. Documented in docs/security-teams.md.
 */
export interface WindowCounts {
  '1m': number;
  '1h': number;
}

export interface HistoryInput {
  agent: { calls: WindowCounts; denied: WindowCounts; in_flight: number; budget: { spent: number; window: '1h' } };
  /** This agent, this tool. */
  tool: { calls: WindowCounts; denied: WindowCounts };
  /** This agent, this tool, these arguments (argumentsDigest). */
  same_arguments: WindowCounts;
}

/** Whose history: the agent, the tool (server-qualified for upstream MCP tools) and the arguments digest. */
export interface HistorySubject {
  agentId: string;
  tool: string;
  argumentsDigest: string;
}

/** The lengths of the windows reported as "1m" and "1h" (shorter only in tests). */
export interface HistoryWindows {
  shortMs: number;
  longMs: number;
}

export const STANDARD_WINDOWS: HistoryWindows = { shortMs: 60_000, longMs: 3_600_000 };

/** What is known once the policy has decided: recorded after the answer. */
export interface Settlement {
  allowed: boolean;
  /** Budget units the allowed call spends (0: none). */
  cost: number;
  /** An allowed call counts as in flight until the executor reports its end or this many ms have passed. */
  inFlightMs: number;
}

/**
 * The store behind `input.history`. `observe` is the one round trip on the check path: it returns the counts
 * before this check and, in the same atomic step, counts this check as a call (so two replicas racing on the
 * same call cannot both see "4 before me"). `settle` adds what only the decision knows (denied, cost, in
 * flight); `finish` ends an in-flight call.
 */
export interface HistoryStore {
  /** What the store is, for reasons and logs: "redis://host:port/db" or "in-process". */
  readonly describe: string;
  observe(subject: HistorySubject, checkId: string, timeoutMs: number): Promise<HistoryInput>;
  settle(subject: HistorySubject, checkId: string, settlement: Settlement): Promise<void>;
  finish(agentId: string, checkId: string): Promise<void>;
  close(): Promise<void>;
}

/** The store did not answer (down, slow, refused): policies that read history cannot decide. */
export class HistoryUnavailable extends Error {}
