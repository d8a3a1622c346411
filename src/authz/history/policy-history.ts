import { performance } from 'node:perf_hooks';
import type { ToolDefinition } from '../../catalog/catalog-types.js';
import { argumentsDigest } from '../../shared/digest.js';
import { errorMessage, type Logger } from '../../shared/logger.js';
import type { MappedRequest } from '../input/build-input.js';
import { PolicyError, type EvaluationBounds, type PolicyEngine } from '../policy/policy-engine.js';
import { Rejection } from '../response/rejection.js';
import { McpRejection } from '../input/mcp-rejection.js';
import { TOOLGATE_MCP_SERVER } from '../input/mcp-adapter.js';
import type { HistoryConfig } from './history-config.js';
import { HistoryUnavailable, type HistoryStore, type HistorySubject } from './history-input.js';
import type { HistoryMetrics } from './history-metrics.js';

/** What a check fetched, kept until its outcome is known. */
export interface ObservedCheck {
  subject: HistorySubject;
  checkId: string;
  tool: ToolDefinition | undefined;
  /** Run by toolgate's executor (which reports the end), not by an upstream MCP server. */
  onExecutor: boolean;
}

// A Job's start-up comes on top of the tool's own timeout.
const START_UP_MS = 30_000;
// The store's share of what is left of the caller's deadline.
const DEADLINE_SHARE = 0.5;
// During an outage every history-reading check is refused: the log says so once per this interval, with a count.
const LOG_EVERY_MS = 10_000;

/**
 * `input.history` on the check path: fetched before evaluation when the active policy reads it (one store
 * round trip, bounded by the store's timeout and half of what is left of the caller's deadline), recorded
 * after the outcome. The store down or slow => the check is refused with `history_unavailable` naming the
 * store (fail closed); a policy that does not read history never waits for the store.
 */
export class PolicyHistory {
  private lastLoggedAt = -Infinity;
  private refusedSinceLog = 0;

  constructor(
    private readonly store: HistoryStore,
    private readonly engine: PolicyEngine,
    private readonly config: HistoryConfig,
    private readonly commandTimeoutMs: number,
    private readonly metrics: HistoryMetrics,
    private readonly log: Logger,
  ) {}

  get describe(): string {
    return this.store.describe;
  }

  /** Whether this check needs history: a tool call by a known agent, and a policy that reads it. */
  wanted(mapped: MappedRequest): boolean {
    if (this.config.read === 'never' || !mapped.toolCall || !mapped.agent) return false;
    return this.config.read === 'always' || (this.engine.readsHistory?.() ?? true);
  }

  /** Fetches the counts into `mapped.input.history`; throws a Rejection (history_unavailable) when it cannot. */
  async attach(mapped: MappedRequest, checkId: string, bounds: EvaluationBounds): Promise<ObservedCheck> {
    const toolCall = mapped.toolCall as NonNullable<MappedRequest['toolCall']>;
    const agentId = (mapped.agent as NonNullable<MappedRequest['agent']>).id;
    const upstream = toolCall.server !== undefined && toolCall.server !== TOOLGATE_MCP_SERVER;
    const subject: HistorySubject = {
      agentId,
      // The same tool over REST and over MCP's toolgate server is one tool; an upstream server's tools are its own.
      tool: upstream ? `${toolCall.server}/${toolCall.tool}` : toolCall.tool,
      argumentsDigest: argumentsDigest(toolCall.arguments),
    };
    const left = bounds.deadline === undefined ? Infinity : (bounds.deadline - performance.now()) * DEADLINE_SHARE;
    const timeoutMs = Math.max(1, Math.floor(Math.min(this.commandTimeoutMs, left)));
    const t0 = performance.now();
    try {
      mapped.input.history = (await this.store.observe(subject, checkId, timeoutMs)) as unknown as MappedRequest['input'];
      this.metrics.operations.inc({ operation: 'observe', outcome: 'ok' });
    } catch (err) {
      const message = err instanceof HistoryUnavailable ? err.message : `the history store ${this.store.describe} failed: ${errorMessage(err)}`;
      this.metrics.operations.inc({ operation: 'observe', outcome: /did not answer/.test(message) ? 'timeout' : 'unavailable' });
      this.refusedSinceLog++;
      if (performance.now() - this.lastLoggedAt >= LOG_EVERY_MS) {
        this.log.error('history store unavailable: checks whose policy reads input.history are refused', { decision_id: checkId, store: this.store.describe, cause: message, refused_since_last_log: this.refusedSinceLog });
        this.lastLoggedAt = performance.now();
        this.refusedSinceLog = 0;
      }
      const r = new Rejection('history_unavailable', `${message}; the policy reads input.history, so the call is refused until the store answers again`);
      r.agentId = agentId;
      r.agentAuth = mapped.agent?.method;
      r.tool = toolCall.tool;
      // Over MCP the refusal is a JSON-RPC error with the request's id (the session survives it).
      throw mapped.mcp ? McpRejection.from(r, mapped.mcp.id) : r;
    } finally {
      this.metrics.duration.observe({ operation: 'observe' }, (performance.now() - t0) / 1000);
    }
    return { subject, checkId, tool: mapped.tool, onExecutor: !upstream };
  }

  /**
   * Records the outcome: a refusal, or an allowed call (in flight until the executor ends it or its deadline,
   * and its cost spent). Not awaited by the check: the next check on this connection is queued behind it.
   */
  settle(observed: ObservedCheck, allowed: boolean, cost: number): void {
    // Only toolgate's executor reports a call's end: an upstream MCP server's calls are not counted in flight.
    const tool = observed.tool;
    const inFlightMs = allowed && observed.onExecutor && tool ? tool.execution.timeout_seconds * 1000 + START_UP_MS : 0;
    const t0 = performance.now();
    this.store.settle(observed.subject, observed.checkId, { allowed, cost: allowed ? cost : 0, inFlightMs }).then(
      () => {
        this.metrics.operations.inc({ operation: 'settle', outcome: 'ok' });
        this.metrics.duration.observe({ operation: 'settle' }, (performance.now() - t0) / 1000);
      },
      (err: unknown) => {
        this.metrics.operations.inc({ operation: 'settle', outcome: 'unavailable' });
        this.log.error('history store: the outcome of a check could not be recorded', { decision_id: observed.checkId, store: this.store.describe, cause: errorMessage(err) });
      },
    );
  }
}

/**
 * The budget units an allowed call spends: the policy's `cost` (a number >= 0 in its decision document),
 * else the catalog's cost for the tool, else 0. A `cost` that is not such a number fails the check.
 */
export function decisionCost(result: unknown, tool: ToolDefinition | undefined, decisionPath: string): number {
  const declared = result !== null && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>).cost : undefined;
  if (declared === undefined) return tool?.cost ?? 0;
  if (typeof declared !== 'number' || !Number.isFinite(declared) || declared < 0) {
    throw new PolicyError(`data.${decisionPath.replaceAll('/', '.')}.cost must be a number >= 0, got ${JSON.stringify(declared)}`);
  }
  return declared;
}
