import type { ServerResponse } from 'node:http';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { McpError, type CallToolResult, type ServerNotification, type ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { mcpCallIdentity } from '../call/call-identity.js';
import { obligatedTool } from '../call/obligated-tool.js';
import { busyRefusal, outcomeStatus, startCall, type CallDeps } from '../call/start-call.js';
import type { RunEvent, ToolOutcome } from '../runners/runner.js';
import { MCP_ERROR, type JsonRpcId } from './mcp-errors.js';
import type { McpInFlight } from './mcp-in-flight.js';
import type { VerifiedMcpRequest } from './mcp-request.js';
import { callToolResult, invalidArgumentsResult, progressStep, progressTotal } from './mcp-tool-results.js';

export interface McpToolCallDeps extends CallDeps {
  inFlight: McpInFlight;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * tools/call: the same admission, ledger and runner as REST (call/start-call.ts), with MCP's additions:
 * progress notifications along the run's lifecycle, cancellation by notifications/cancelled or by the client
 * closing the stream (the run is stopped when no other retry waits for it; the end is recorded), and
 * run-once per (session, request id) or Idempotency-Key.
 */
export async function handleToolCall(
  deps: McpToolCallDeps,
  r: VerifiedMcpRequest,
  call: { id: JsonRpcId; params: Record<string, unknown> | undefined; idempotencyKey: string | undefined; traceparent: string | undefined },
  res: ServerResponse,
  extra: Extra,
  endStream: () => void,
): Promise<CallToolResult> {
  const params = call.params ?? {};
  const name = String(params.name);
  const tool = deps.catalog.get(name);
  if (!tool) throw new McpError(MCP_ERROR.invalidParams, `Unknown tool: ${name}`);
  // The arguments verified against the attestation (not a copy the SDK made while validating the envelope).
  const args = params.arguments ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return invalidArgumentsResult(tool, [{ path: '', message: 'must be an object' }]);
  const errors = deps.catalog.validateArguments(tool, args);
  if (errors.length > 0) return invalidArgumentsResult(tool, errors);
  // The limits the policy obliged (attested): the call runs with them or not at all.
  const obliged = obligatedTool(tool, r.obligations);
  if (!obliged.ok) throw new McpError(MCP_ERROR.notAuthorized, `the decision's obligations cannot be applied: ${obliged.message}`, { code: 'invalid_obligations' });

  const progress = progressReporter(extra, progressTokenOf(params), deps.runner.kind);
  const started = startCall(deps, {
    tool: obliged.tool,
    ...(obliged.obligations ? { obligations: obliged.obligations } : {}),
    args: args as Record<string, unknown>,
    agentId: r.agentId,
    decisionId: r.decisionId,
    policyRevision: r.policyRevision,
    identity: mcpCallIdentity({ agentId: r.agentId, tool: tool.name, decisionId: r.decisionId, idempotencyKey: call.idempotencyKey, sessionId: r.sessionId, requestId: call.id }),
    // A retried POST can name the call again by its session and request id, or by its Idempotency-Key.
    idempotent: Boolean(call.idempotencyKey) || r.sessionId !== undefined,
    traceparent: call.traceparent,
    protocol: 'mcp',
    onEvent: progress.onEvent,
  });
  if (started.kind === 'busy') {
    const [code, message] = busyRefusal(started, r.agentId);
    throw new McpError(MCP_ERROR.tooManyCalls, `${message} (in ${started.retryAfterSeconds} s)`, { code, retry_after_seconds: started.retryAfterSeconds });
  }
  if (started.kind === 'conflict') {
    throw new McpError(MCP_ERROR.idempotencyConflict, 'this request id (or Idempotency-Key) was already used for a call with other arguments', { code: 'idempotency_conflict' });
  }
  progress.admitted(started.kind === 'run' ? 'admitted' : started.kind === 'join' ? 'joined the same call, already running' : 'the same call already ran: replaying its result');

  let cancelled = false;
  const cancel = (reason: string): void => {
    if (cancelled) return;
    cancelled = true;
    deps.log.info('MCP tool call cancelled', { call_id: started.callId, tool: tool.name, agent_id: r.agentId, reason });
    // The run stops unless a retry of the same call still waits for it; the outcome is still recorded below.
    started.release();
    // A cancelled request gets no response (MCP cancellation): end its stream now.
    endStream();
  };
  const unregister = deps.inFlight.add(r.agentId, r.sessionId, call.id, cancel);
  const onClose = (): void => {
    if (!res.writableFinished) cancel('the client closed the stream');
  };
  res.on('close', onClose);
  const onAbort = (): void => cancel('the request was aborted');
  extra.signal.addEventListener('abort', onAbort);
  let outcome: ToolOutcome;
  try {
    outcome = await started.outcome;
  } finally {
    unregister();
    res.off('close', onClose);
    extra.signal.removeEventListener('abort', onAbort);
    started.release();
  }
  started.finish(outcome, outcomeStatus(outcome));
  // Not run here: another executor replica holds this call (Kubernetes runner, run once across replicas).
  if (outcome.status === 'refused') {
    throw new McpError(outcome.code === 'idempotency_conflict' ? MCP_ERROR.idempotencyConflict : MCP_ERROR.notAuthorized, outcome.error, { code: outcome.code });
  }
  if (!cancelled) await progress.finished(outcome);
  return callToolResult(tool, started.callId, outcome, started.kind === 'replay');
}

function progressTokenOf(params: Record<string, unknown>): string | number | undefined {
  const meta = params._meta;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const token = (meta as Record<string, unknown>).progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

/** notifications/progress on the request's own stream, in order, each step at most once. */
function progressReporter(extra: Extra, token: string | number | undefined, runnerKind: 'local' | 'kubernetes') {
  const total = progressTotal(runnerKind);
  let last = 0;
  let queue: Promise<void> = Promise.resolve();
  const send = (step: number, message: string): void => {
    if (token === undefined || step <= last) return;
    last = step;
    const notification: ServerNotification = { method: 'notifications/progress', params: { progressToken: token, progress: step, total, message } };
    // Chained: each is handed to the transport after the one before, so the client sees them in order.
    queue = queue.then(() => extra.sendNotification(notification)).catch(() => undefined);
  };
  return {
    // A runner may report its first event while the call is being admitted: "admitted" goes out first.
    onEvent:
      token === undefined
        ? undefined
        : (e: RunEvent): void => {
            const p = progressStep(e);
            if (!p) return;
            send(1, 'admitted');
            send(p.step, p.message);
          },
    admitted: (message: string): void => send(1, message),
    finished: async (outcome: ToolOutcome): Promise<void> => {
      send(total, `finished: ${outcome.status}`);
      await queue;
    },
  };
}
