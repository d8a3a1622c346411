import type { ToolCatalog, ToolDefinition } from '../../catalog/tool-catalog.js';
import { argumentsDigest, canonicalJson, sha256Hex } from '../../shared/digest.js';
import type { Logger } from '../../shared/logger.js';
import type { Obligations } from '../../shared/obligations.js';
import type { CallTelemetry } from '../observability/call-telemetry.js';
import type { RunEvent, Runner, ToolOutcome } from '../runners/runner.js';
import type { CallLedger } from './call-ledger.js';

/**
 * The one way an authorized, validated call runs, whatever front end received it (REST `POST /v1/tools/{tool}`
 * or MCP `tools/call`): telemetry begins, the call ledger admits it once (joins or replays a retry, refuses
 * past the in-flight limit), the runner runs it, and the end is recorded once. Front ends only translate.
 */
export interface CallDeps {
  catalog: ToolCatalog;
  runner: Runner;
  ledger: CallLedger;
  telemetry: CallTelemetry;
  log: Logger;
  /** Told when a call admitted under a decision ends (or is refused here): input.history's in flight. */
  onCallEnded?: (agentId: string, decisionId: string) => void;
}

export interface CallRequest {
  /** The catalog's tool, with the decision's obligations applied (obligated-tool.ts). */
  tool: ToolDefinition;
  /** What the policy obliged, when it tightens the catalog's settings. */
  obligations?: Obligations;
  /** Already attested and validated against the tool's schema. */
  args: Record<string, unknown>;
  agentId: string;
  decisionId: string;
  policyRevision: string;
  /** What makes two requests the same call (see call-identity.ts). */
  identity: string;
  /**
   * A retry can name this call again (an Idempotency-Key, or an MCP session and request id), rather than only
   * its single-use decision: the ledger keeps its outcome, and runners that share calls across replicas know.
   */
  idempotent: boolean;
  traceparent: string | undefined;
  protocol: 'rest' | 'mcp';
  /** The run's lifecycle events, for the caller that started the run (MCP progress). */
  onEvent?: (e: RunEvent) => void;
}

export type StartedCall =
  | { kind: 'busy'; retryAfterSeconds: number; limit: 'executor' | 'agent' }
  | { kind: 'conflict' }
  | {
      kind: 'run' | 'join' | 'replay';
      callId: string;
      outcome: Promise<ToolOutcome>;
      /** This waiter is gone (client disconnected or cancelled): when it was the last, the run is stopped. */
      release: () => void;
      /** Records the end once per waiter (a join or replay records only its span); `status`: see outcomeStatus. */
      finish: (outcome: ToolOutcome, status: number) => void;
    };

export function startCall(deps: CallDeps, req: CallRequest): StartedCall {
  const { tool, args, agentId, decisionId, policyRevision } = req;
  // A DNS-label-safe id (names the Job), stable for a given identity so retries map to the same call.
  const callId = sha256Hex(req.identity).slice(0, 20);
  const digest = argumentsDigest(args);
  const fields = deps.catalog.deriveFields(tool, args);
  const call = deps.telemetry.begin({
    callId,
    tool: tool.name,
    agentId,
    decisionId,
    policyRevision,
    argumentsDigest: digest,
    action: String(fields.action ?? ''),
    resource: String(fields.resource ?? ''),
    namespace: typeof fields.namespace === 'string' ? fields.namespace : undefined,
    traceparent: req.traceparent,
    protocol: req.protocol,
  });

  const admission = deps.ledger.admit(req.identity, digest, (signal) => {
    const hooks = call.runnerHooks(deps.runner.kind);
    const observe = req.onEvent
      ? (e: RunEvent): void => {
          hooks.observe(e);
          req.onEvent?.(e);
        }
      : hooks.observe;
    return deps.runner.run({ callId, tool, arguments: args, agentId, decisionId, policyRevision, idempotent: req.idempotent, signal, ...hooks, observe, ...(req.obligations ? { obligations: req.obligations } : {}) });
  }, { agentId, retain: req.idempotent });
  if (admission.kind === 'busy') {
    call.finish(undefined, 429, { replayed: false });
    deps.onCallEnded?.(agentId, decisionId);
    return admission;
  }
  if (admission.kind === 'conflict') {
    call.finish(undefined, 422, { replayed: true });
    deps.onCallEnded?.(agentId, decisionId);
    return admission;
  }
  return {
    kind: admission.kind,
    callId,
    outcome: admission.outcome,
    release: admission.release,
    finish: (outcome, status) => {
      const replayed = admission.kind !== 'run';
      const resultText = outcome.status === 'succeeded' ? canonicalJson(outcome.result) : undefined;
      deps.onCallEnded?.(agentId, decisionId);
      call.finish(outcome, status, { replayed, ...(resultText !== undefined ? { resultBytes: Buffer.byteLength(resultText), resultDigest: `sha256:${sha256Hex(resultText)}` } : {}) });
      const cause = outcome.status === 'failed' || outcome.status === 'unavailable' ? { cause: outcome.error } : {};
      const logFields = { call_id: callId, tool: tool.name, agent_id: agentId, decision_id: decisionId, protocol: req.protocol, status: outcome.status, http_status: status, replayed: admission.kind === 'replay', ...cause, ...(req.obligations ? { obligations: req.obligations } : {}) };
      if (outcome.status === 'unavailable') deps.log.error('call finished', logFields);
      else deps.log.info('call finished', logFields);
    },
  };
}

/**
 * The HTTP status REST answers for an outcome. MCP answers every call with HTTP 200, but metrics and audit
 * records carry this status for both, so a call is counted the same whichever front end received it.
 */
export function outcomeStatus(outcome: ToolOutcome): number {
  switch (outcome.status) {
    case 'succeeded':
      return 200;
    case 'failed':
      return 502;
    case 'timeout':
      return 504;
    case 'cancelled':
      return 499;
    case 'unavailable':
      return 503;
    case 'refused':
      return outcome.code === 'idempotency_conflict' ? 422 : 403;
  }
}

/** The refusal code and message of a call refused for backpressure, by the limit it met. */
export function busyRefusal(busy: { limit: 'executor' | 'agent' }, agentId: string): [string, string] {
  return busy.limit === 'agent'
    ? ['agent_too_many_calls', `agent "${agentId}" is at its limit of calls in flight; retry later`]
    : ['too_many_calls', 'the executor is at its limit of calls in flight; retry later'];
}
