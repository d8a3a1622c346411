import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AuditTrail } from '../audit/audit-trail.js';
import { argumentsDigest } from '../shared/digest.js';
import { errorMessage, type Logger } from '../shared/logger.js';
import { contextFrom, type Tracing } from '../shared/tracing.js';
import { ATTESTATION_HEADER, attest } from '../shared/decision-attestation.js';
import { TRUSTED_HEADERS } from '../shared/trusted-headers.js';
import type { CheckRequest, CheckResponse } from './grpc/check-types.js';
import { mapCheckRequest, type InputMapperOptions, type MappedRequest } from './input/build-input.js';
import { encodeInputJson, type EncodedInput } from './input/input-json.js';
import type { JsonObject } from './input/envoy-input.js';
import { logDecision, traceIdOf, type DecisionRecord } from './observability/decision-log.js';
import type { AuthzMetrics, CallResult } from './observability/metrics.js';
import { interpretResult, type PolicyDecision } from './policy/decision.js';
import { PolicyError, type EvaluationBounds, type PolicyEngine } from './policy/policy-engine.js';
import { obligationsToCarry, ObligationPolicyError } from './policy/obligations.js';
import { allowResponse, denyResponse, type DenyBody } from './response/check-response.js';
import { Rejection } from './response/rejection.js';
import { McpRejection } from './input/mcp-rejection.js';
import type { UpstreamCredentialValues } from './upstream-credentials.js';
import { MCP_LISTING_METADATA_KEY } from './mcp-lists/listing-metadata.js';
import { linksTo, McpCheck, mcpMetadata, mcpMetaTraceparent, mcpPolicyDeny, mcpPolicyError, mcpRecord, mcpRefusalSubject, mcpRejectionDeny, setMcpSpanAttributes } from './mcp-check.js';
import { TOOLGATE_MCP_SERVER } from './input/mcp-adapter.js';
import { decisionCost, type ObservedCheck, type PolicyHistory } from './history/policy-history.js';
import { checkApproval, type ApprovalNote } from './approvals/approval-check.js';
import type { ApprovalGate } from './approvals/approval-gate.js';

export interface CheckServiceOptions {
  mapper: InputMapperOptions;
  engine: PolicyEngine;
  metrics: AuthzMetrics;
  log: Logger;
  decisionLog: Logger;
  tracing?: Tracing;
  /** Refused calls never reach the executor: their audit record is written here. */
  audit?: AuditTrail;
  /** Shared with the executor: each allowed tool call carries an attestation it verifies. */
  attestationKey?: Buffer;
  /** Told of every decision after its answer has left (recorded inputs, shadow policy, log shipping). */
  onDecided?: DecisionObserver;
  /** What toolgate presents to each upstream MCP server (by server name). */
  upstreamCredentials?: UpstreamCredentialValues;
  /** input.history: fetched before evaluation when the policy reads it, recorded after the outcome. */
  history?: PolicyHistory;
  /** Approvals (issue 18): where calls the policy allowed on condition of a person's approval are held. */
  approvals?: ApprovalGate;
}

/** What a check's evaluation produced, kept for recording once its outcome is final. */
interface Evaluated {
  revision?: string;
  result?: unknown;
  json?: EncodedInput;
  /** The history fetched for this check, and the budget an allow spends. */
  history?: ObservedCheck;
  cost?: number;
}

/**
 * Runs after the answer was sent; `input` is the policy input (undefined when the call was refused before it
 * was evaluated), `result` the raw value at the decision path, `inputJson` the input as the engine got it.
 */
export type DecisionObserver = (record: DecisionRecord, input: JsonObject | undefined, result: unknown, inputJson: EncodedInput | undefined) => void;

/** Everything known about one Check by the time it is answered, for the response, the log and the metrics. */
interface Outcome {
  response: CheckResponse;
  result: CallResult;
  httpStatus: number;
  code: string | undefined;
  reasons: string[];
  revision: string | undefined;
  evaluationMs: number | undefined;
  cause?: string;
  /** An allowed tool call's obligations, for the decision log and the span. */
  obligations?: PolicyDecision['obligations'];
  /** Attribution of a refusal raised before mapping finished. */
  agentId?: string;
  agentAuth?: string;
  tool?: string;
  approval?: ApprovalNote;
}

/**
 * The check pipeline: request -> input mapping -> policy engine -> response. It never throws: any failure
 * becomes a deny with a specific reason (fail closed), is logged with its cause, and is counted.
 */
export class CheckService {
  private readonly mcp: McpCheck;

  constructor(private readonly opts: CheckServiceOptions) {
    this.mcp = new McpCheck({ engine: opts.engine, catalog: opts.mapper.catalog, servers: opts.mapper.servers, upstreamCredentials: opts.upstreamCredentials, attestationKey: opts.attestationKey });
  }

  /** `bounds`: the caller's deadline and cancellation; past either, nothing is evaluated or counted as applied. */
  async check(req: CheckRequest, traceparent: string | undefined, bounds: EvaluationBounds = {}): Promise<CheckResponse> {
    const started = performance.now();
    const decisionId = randomUUID();
    const http = req.attributes?.request?.http;
    let mapped: MappedRequest | undefined;
    let mapError: unknown;
    try {
      mapped = mapCheckRequest(req, this.opts.mapper);
    } catch (err) {
      mapError = err;
    }
    // Envoy injects its ext_authz span's context into the gRPC metadata; without an Envoy tracer the
    // client's own traceparent header is the best parent there is. An MCP client that carries its trace in
    // params._meta (and no header) is joined there: its context becomes the parent, Envoy's a link.
    const metaTraceparent = http?.headers?.traceparent ? undefined : mcpMetaTraceparent(mapped);
    const parentTraceparent = metaTraceparent ?? traceparent ?? http?.headers?.traceparent;
    const links = metaTraceparent && traceparent ? linksTo(traceparent) : [];
    const span = this.opts.tracing?.enabled
      ? this.opts.tracing.tracer.startSpan(
          'toolgate.authz.check',
          {
            kind: SpanKind.SERVER,
            attributes: { 'rpc.system': 'grpc', 'rpc.service': 'envoy.service.auth.v3.Authorization', 'rpc.method': 'Check', 'http.request.method': http?.method ?? '', 'url.path': http?.path ?? '' },
            links,
            startTime: performance.timeOrigin + started,
          },
          contextFrom(parentTraceparent),
        )
      : undefined;
    let outcome: Outcome;
    const evaluated: Evaluated = {};
    try {
      if (expired(bounds)) throw new AbandonedCheck();
      if (!mapped) throw mapError;
      outcome = await this.decide(mapped, decisionId, span, bodyBytes(http), evaluated, bounds);
    } catch (err) {
      outcome = this.refuse(err, decisionId, mapped, evaluated.revision);
    }
    // Envoy has stopped waiting (deadline) or reset the call: whatever was decided is never applied.
    if (expired(bounds)) outcome = abandoned(outcome, decisionId, bounds);
    // Recorded before the answer leaves: this connection's next check is queued behind it.
    if (evaluated.history && outcome.result !== 'abandoned') this.opts.history?.settle(evaluated.history, outcome.result === 'allowed', evaluated.cost ?? 0);

    const durationMs = performance.now() - started;
    const record: DecisionRecord = {
      decision_id: decisionId,
      request_id: http?.id,
      trace_id: span?.spanContext().traceId ?? traceIdOf(parentTraceparent),
      agent_id: mapped?.agent?.id ?? outcome.agentId,
      agent_auth: mapped?.agent?.method ?? outcome.agentAuth,
      tool: mapped?.toolCall?.tool ?? outcome.tool,
      action: str(mapped?.fields.action),
      resource: str(mapped?.fields.resource),
      namespace: str(mapped?.fields.namespace),
      allowed: outcome.result === 'allowed',
      applied: outcome.result !== 'abandoned',
      result: outcome.result,
      code: outcome.code,
      reasons: outcome.reasons,
      policy_revision: outcome.revision,
      engine: this.opts.engine.kind,
      evaluation_ms: outcome.evaluationMs,
      duration_ms: round(durationMs),
      http_status: outcome.httpStatus,
    };
    if (outcome.cause) record.cause = outcome.cause;
    if (outcome.obligations) record.obligations = outcome.obligations;
    if (mapped?.mcp) record.mcp = mcpRecord(mapped.mcp);
    if (outcome.approval) record.approval = outcome.approval;
    // The answer goes to Envoy first; the log line, metrics, audit record and span follow in the next
    // turn (the span keeps the time the decision was made).
    const endedAt = performance.timeOrigin + performance.now();
    setImmediate(() => {
      this.record(record, durationMs / 1000);
      // Refusals never reach a runner; nor does an allowed MCP call to an upstream server (no executor in
      // between): both are recorded here. Allowed calls to toolgate's own tools are recorded by the executor.
      const upstreamCall = record.mcp?.method === 'tools/call' && record.mcp.server !== TOOLGATE_MCP_SERVER;
      if (!record.allowed || upstreamCall || record.approval) this.audit(record, mapped);
      if (span) endCheckSpan(span, record, mapped, this.opts.engine.decisionPath, endedAt);
      // A decision nobody waited for was never enforced: it is not shipped (nor compared by the shadow).
      if (record.applied) this.opts.onDecided?.(record, mapped?.input, evaluated.result, evaluated.json);
    });
    return outcome.response;
  }

  private async decide(
    mapped: MappedRequest,
    decisionId: string,
    span: Span | undefined,
    requestBody: Uint8Array,
    evaluated: Evaluated,
    bounds: EvaluationBounds,
  ): Promise<Outcome> {
    const { engine, metrics } = this.opts;
    const t0 = performance.now();
    const evalSpan = span
      ? this.opts.tracing?.tracer.startSpan('toolgate.policy.evaluate', { attributes: { 'toolgate.policy.engine': engine.kind, 'toolgate.policy.path': engine.decisionPath } }, trace.setSpan(contextFrom(undefined), span))
      : undefined;
    let evaluation;
    try {
      if (expired(bounds)) throw new AbandonedCheck();
      if (this.opts.history?.wanted(mapped)) evaluated.history = await this.opts.history.attach(mapped, decisionId, bounds);
      evaluated.json = encodeInputJson(mapped.input, mapped.rawArguments);
      evaluation = await engine.evaluate(mapped.input, evaluated.json, bounds);
      evalSpan?.setAttribute('toolgate.policy.revision', evaluation.revision);
    } catch (err) {
      evalSpan?.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      throw err;
    } finally {
      evalSpan?.end();
    }
    evaluated.revision = evaluation.revision;
    evaluated.result = evaluation.result;
    const evaluationSeconds = (performance.now() - t0) / 1000;
    metrics.evaluationDuration.observe({ engine: engine.kind }, evaluationSeconds);
    let decision: PolicyDecision = interpretResult(evaluation.result, engine.decisionPath);
    const revision = evaluation.revision;
    if (mapped.mcp) decision = await this.mcp.gateCall(mapped, decision, revision);
    // Obligations: only tighten the called tool's catalog entry, else no allow (throws ObligationPolicyError).
    const obligations = decision.allowed ? obligationsToCarry(decision.obligations, mapped.toolCall && { tool: mapped.toolCall.tool, server: mapped.mcp?.server }, this.opts.mapper.catalog) : undefined;
    if (evaluated.history && decision.allowed) evaluated.cost = decisionCost(evaluation.result, mapped.tool, engine.decisionPath);
    const meta = this.metadata(decisionId, revision, mapped, decision.allowed, decision.allowed ? undefined : 'policy_denied');
    Object.assign(meta, decision.dynamicMetadata);
    const evaluationMs = round(evaluationSeconds * 1000);

    // --- approvals (issue 18): an allow on condition of a person's approval of exactly this call ---
    let approval: ApprovalNote | undefined;
    if (decision.allowed && decision.approval) {
      const held = await checkApproval({
        gate: this.opts.approvals, mapped, requirement: decision.approval, revision, decisionId, meta,
        denyBody: (code, message, reasons) => denyBody(code, message, reasons, decisionId, revision, mapped.toolCall?.tool),
      });
      if (held.kind === 'held') {
        return { response: held.response, result: 'denied', httpStatus: held.httpStatus, code: held.code, reasons: held.reasons, revision, evaluationMs, ...(held.note ? { approval: held.note } : {}) };
      }
      approval = held.note;
      meta.approval_id = held.note.id;
    }
    // --- end approvals ---

    if (decision.allowed && mapped.mcp) {
      const { trusted, remove, listing } = await this.mcp.allowHeaders(mapped, decisionId, revision, requestBody, obligations);
      if (listing) meta[MCP_LISTING_METADATA_KEY] = listing;
      const withRemovals = { ...decision, requestHeadersToRemove: [...decision.requestHeadersToRemove, ...remove] };
      return {
        response: allowResponse({ decision: withRemovals, trustedHeaders: trusted, decisionId, dynamicMetadata: meta }),
        ...(obligations ? { obligations: decision.obligations } : {}),
        result: 'allowed',
        httpStatus: 200,
        code: undefined,
        reasons: [],
        revision,
        evaluationMs,
        ...(approval ? { approval } : {}),
      };
    }
    if (decision.allowed) {
      const trusted: Record<string, string> = {
        [TRUSTED_HEADERS.decisionId]: decisionId,
        [TRUSTED_HEADERS.policyRevision]: revision,
      };
      if (mapped.agent) {
        trusted[TRUSTED_HEADERS.agentId] = mapped.agent.id;
        trusted[TRUSTED_HEADERS.agentMethod] = mapped.agent.method;
      }
      if (mapped.toolCall) trusted[TRUSTED_HEADERS.tool] = mapped.toolCall.tool;
      if (obligations) trusted[TRUSTED_HEADERS.obligations] = obligations;
      if (this.opts.attestationKey && mapped.toolCall && mapped.agent) {
        trusted[ATTESTATION_HEADER] = attest(this.opts.attestationKey, {
          decisionId,
          agentId: mapped.agent.id,
          agentMethod: mapped.agent.method,
          tool: mapped.toolCall.tool,
          policyRevision: revision,
          body: requestBody,
          ...(obligations ? { obligations } : {}),
        });
      }
      return {
        response: allowResponse({ decision, trustedHeaders: trusted, decisionId, dynamicMetadata: meta }),
        ...(obligations ? { obligations: decision.obligations } : {}),
        result: 'allowed',
        httpStatus: 200,
        code: undefined,
        reasons: [],
        revision,
        evaluationMs,
        ...(approval ? { approval } : {}),
      };
    }

    const httpStatus = decision.httpStatus ?? 403;
    if (mapped.mcp) {
      const what = mcpRefusalSubject(mapped);
      const data = denyBody('policy_denied', what, decision.reasons, decisionId, revision, mapped.toolCall?.tool).error;
      const answer = mcpPolicyDeny({ message: mapped.mcp, what, decision, httpStatus, data, decisionId, meta });
      return {
        response: answer.response,
        result: 'denied',
        httpStatus: answer.httpStatus,
        code: 'policy_denied',
        reasons: decision.reasons,
        revision,
        evaluationMs,
      };
    }
    const body: DenyBody | string =
      decision.body ??
      denyBody('policy_denied', 'the policy does not allow this tool call', decision.reasons, decisionId, revision, mapped.toolCall?.tool);
    return {
      response: denyResponse({ httpStatus, body, headers: decision.headers, decisionId, dynamicMetadata: meta }),
      result: 'denied',
      httpStatus,
      code: 'policy_denied',
      reasons: decision.reasons,
      revision,
      evaluationMs,
    };
  }

  /** Turns any failure into a structured deny. Rejections are the agent's input; anything else is ours. */
  private refuse(err: unknown, decisionId: string, mapped: MappedRequest | undefined, evaluatedRevision: string | undefined): Outcome {
    if (err instanceof AbandonedCheck) {
      // Filled in by abandoned(): nothing was decided.
      return { response: { status: { code: 7 } }, result: 'abandoned', httpStatus: 503, code: undefined, reasons: [], revision: undefined, evaluationMs: undefined, ...(mapped?.toolCall ? { tool: mapped.toolCall.tool } : {}) };
    }
    if (err instanceof Rejection) {
      const revision = undefined;
      const body = denyBody(err.code, err.message, [err.message], decisionId, revision, err.tool ?? mapped?.toolCall?.tool, err.details);
      const meta = this.metadata(decisionId, revision, mapped, false, err.code);
      if (err.agentId) meta.agent_id = err.agentId;
      if (err.tool) meta.tool = err.tool;
      const { response, httpStatus } =
        err instanceof McpRejection
          ? mcpRejectionDeny(err, body.error, decisionId, meta)
          : { response: denyResponse({ httpStatus: err.httpStatus, body, decisionId, dynamicMetadata: meta }), httpStatus: err.httpStatus };
      const outcome: Outcome = {
        response,
        result: 'denied',
        httpStatus,
        code: err.code,
        reasons: [err.message],
        revision,
        evaluationMs: undefined,
      };
      if (err.agentId) outcome.agentId = err.agentId;
      if (err.agentAuth) outcome.agentAuth = err.agentAuth;
      if (err.tool) outcome.tool = err.tool;
      return outcome;
    }
    const isPolicy = err instanceof PolicyError;
    const cause = errorMessage(err);
    // The revision that failed (a policy_error is the policy's fault: name which one).
    const revision = evaluatedRevision ?? this.opts.engine.revision?.();
    if (!isPolicy) this.opts.log.error('check failed unexpectedly', { decision_id: decisionId, cause, stack: err instanceof Error ? err.stack : undefined });
    const code = err instanceof ObligationPolicyError ? err.code : 'policy_error';
    if (err instanceof ObligationPolicyError) this.opts.log.error('policy obligations refused: the call is denied', { decision_id: decisionId, policy_revision: revision, agent_id: mapped?.agent?.id, tool: mapped?.toolCall?.tool, cause });
    // The cause as logged may name files on this server (Rego source paths): agents see it without them.
    const message = isPolicy ? `authorization failed: ${withoutFilePaths(cause)}` : 'authorization failed: internal error (see the gateway log for this decision id)';
    const body = denyBody(code, message, [message], decisionId, revision, mapped?.toolCall?.tool);
    const meta = this.metadata(decisionId, revision, mapped, false, code);
    const answer = mapped?.mcp ? mcpPolicyError(mapped.mcp, message, body.error, decisionId, meta) : { response: denyResponse({ httpStatus: 500, body, decisionId, dynamicMetadata: meta }), httpStatus: 500 };
    return {
      response: answer.response,
      result: 'error',
      httpStatus: answer.httpStatus,
      code,
      reasons: [message],
      revision,
      evaluationMs: undefined,
      cause,
    };
  }

  private metadata(decisionId: string, revision: string | undefined, mapped: MappedRequest | undefined, allowed: boolean, code: string | undefined): JsonObject {
    const meta: JsonObject = { decision_id: decisionId, allowed };
    if (revision !== undefined) meta.policy_revision = revision;
    if (mapped?.agent) meta.agent_id = mapped.agent.id;
    if (mapped?.toolCall) meta.tool = mapped.toolCall.tool;
    if (code) meta.code = code;
    if (mapped?.mcp) Object.assign(meta, mcpMetadata(mapped.mcp));
    return meta;
  }

  private audit(r: DecisionRecord, mapped: MappedRequest | undefined): void {
    this.opts.audit
      ?.append({
        kind: r.allowed ? (r.approval ? 'approval_consumed' : 'upstream_call_allowed') : r.approval?.status === 'pending' ? 'call_held_for_approval' : 'refused_call',
        decision_id: r.decision_id,
        request_id: r.request_id ?? null,
        agent_id: r.agent_id ?? null,
        agent_auth: r.agent_auth ?? null,
        tool: r.tool ?? null,
        action: r.action ?? null,
        resource: r.resource ?? null,
        namespace: r.namespace ?? null,
        arguments_digest: mapped?.toolCall ? argumentsDigest(mapped.toolCall.arguments) : null,
        policy_revision: r.policy_revision ?? null,
        result_status: r.result,
        code: r.code ?? null,
        reasons: r.reasons,
        http_status: r.http_status,
        duration_ms: r.duration_ms,
        trace_id: r.trace_id ?? null,
        ...(r.approval ? { approval_id: r.approval.id, approval_status: r.approval.status } : {}),
        ...(r.mcp ? { mcp_method: r.mcp.method, mcp_server: r.mcp.server, mcp_session_id: r.mcp.session_id ?? null } : {}),
      })
      .catch((err: unknown) => this.opts.log.error('audit record could not be written', { decision_id: r.decision_id, cause: errorMessage(err) }));
  }

  private record(record: DecisionRecord, durationSeconds: number): void {
    const { metrics } = this.opts;
    metrics.decisionsBy(record.result).inc();
    // An allowed call is counted by the executor once it has run (with its real outcome): once per call. MCP:
    // only tools/call messages are tool calls; an allowed one to an upstream server never meets the executor,
    // so it is counted here, as allowed. An abandoned check ends in Envoy's fail-closed refusal: an error.
    const isCall = !record.mcp || record.mcp.method === 'tools/call';
    const countedElsewhere = record.result === 'allowed' && (!record.mcp || record.mcp.server === TOOLGATE_MCP_SERVER);
    if (isCall && !countedElsewhere) {
      const result = record.result === 'abandoned' ? 'error' : record.result;
      metrics.toolCalls.inc({ agent_id: record.agent_id ?? '', action: record.action ?? '', resource: record.resource ?? '', result });
    }
    metrics.decisionDuration.observe({ result: record.result }, durationSeconds);
    logDecision(this.opts.decisionLog, record);
  }
}

/** The decision on the span: what was asked, who asked, what the policy said and why. Never argument values. */
function endCheckSpan(span: Span, r: DecisionRecord, mapped: MappedRequest | undefined, decisionPath: string, endedAt: number): void {
  span.setAttributes({
    'toolgate.decision.id': r.decision_id,
    'toolgate.decision.allowed': r.allowed,
    'toolgate.decision.result': r.result,
    'toolgate.policy.path': decisionPath,
    'toolgate.policy.engine': r.engine,
  });
  if (r.code) span.setAttribute('toolgate.decision.code', r.code);
  if (r.reasons.length > 0) span.setAttribute('toolgate.decision.reasons', r.reasons);
  if (r.policy_revision) span.setAttribute('toolgate.policy.revision', r.policy_revision);
  if (r.evaluation_ms !== undefined) span.setAttribute('toolgate.policy.evaluation_ms', r.evaluation_ms);
  if (r.obligations) span.setAttribute('toolgate.decision.obligations', JSON.stringify(r.obligations));
  if (r.agent_id) span.setAttribute('toolgate.agent.id', r.agent_id);
  if (r.agent_auth) span.setAttribute('toolgate.agent.auth', r.agent_auth);
  if (r.tool) {
    span.setAttribute('gen_ai.operation.name', 'execute_tool');
    span.setAttribute('gen_ai.tool.name', r.tool);
  }
  if (r.action) span.setAttribute('toolgate.action', r.action);
  if (r.resource) span.setAttribute('toolgate.resource', r.resource);
  if (r.namespace) span.setAttribute('k8s.namespace.name', r.namespace);
  if (mapped?.toolCall) span.setAttribute('toolgate.tool.arguments_digest', argumentsDigest(mapped.toolCall.arguments));
  if (r.mcp) setMcpSpanAttributes(span, r.mcp);
  if (r.approval) span.setAttributes({ 'toolgate.approval.id': r.approval.id, 'toolgate.approval.status': r.approval.status });
  span.setAttribute('http.response.status_code', r.http_status);
  if (r.result === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: r.reasons[0] ?? 'authorization failed' });
  span.end(endedAt);
}

export function denyBody(
  code: string,
  message: string,
  reasons: string[],
  decisionId: string,
  revision: string | undefined,
  tool: string | undefined,
  details?: unknown,
): DenyBody {
  const error: DenyBody['error'] = { code, message, reasons, decision_id: decisionId };
  if (revision) error.policy_revision = revision;
  if (tool) error.tool = tool;
  if (details !== undefined) error.details = details;
  return { error };
}

/** Raised when a check is abandoned before the policy ran; `abandoned` below turns it into the outcome. */
class AbandonedCheck extends Error {}

function expired(bounds: EvaluationBounds): boolean {
  return bounds.signal?.aborted === true || (bounds.deadline !== undefined && performance.now() >= bounds.deadline);
}

/** The outcome of a check nobody waits for any more: not allowed, not applied, and said why. */
function abandoned(outcome: Outcome, decisionId: string, bounds: EvaluationBounds): Outcome {
  const cancelled = bounds.signal?.aborted === true && !(bounds.deadline !== undefined && performance.now() >= bounds.deadline);
  const code = cancelled ? 'cancelled' : 'deadline_exceeded';
  const message = cancelled ? 'the check was cancelled by its caller before it was answered' : 'the caller\'s deadline passed before the check was answered';
  const body = denyBody(code, message, [message], decisionId, outcome.revision, outcome.tool);
  return {
    ...outcome,
    response: denyResponse({ httpStatus: 503, body, decisionId, dynamicMetadata: { decision_id: decisionId, allowed: false, code } }),
    result: 'abandoned',
    httpStatus: 503,
    code,
    reasons: outcome.result === 'allowed' ? [message] : [message, ...outcome.reasons],
  };
}

/** "/tmp/build/policies/agent/authz/policy.rego:12: ..." -> "policy.rego:12: ...". URLs are left alone. */
export function withoutFilePaths(message: string): string {
  return message.replace(/(^|[\s('"=\[,])((?:[A-Za-z]:)?(?:[\\/][^\s\\/:'"()\],]+)+)/g, (_m, lead: string, path: string) => lead + path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1))
    .replace(/(?:[\w.-]+\/)+([\w.-]+\.rego)\b/g, '$1');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : v === undefined ? undefined : String(v);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The body as Envoy sent it (bytes with pack_as_bytes, else the string), which the executor will receive too. */
function bodyBytes(http: { raw_body?: Uint8Array; body?: string } | undefined): Uint8Array {
  return http?.raw_body && http.raw_body.length > 0 ? http.raw_body : Buffer.from(http?.body ?? '', 'utf8');
}
