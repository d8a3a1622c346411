import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { AuditTrail } from '../../audit/audit-trail.js';
import { errorMessage, type Logger } from '../../shared/logger.js';
import { contextFrom, traceparentOf, type Tracing } from '../../shared/tracing.js';
import type { RunEvent, ToolOutcome } from '../runners/runner.js';
import type { ExecutorMetrics } from './metrics.js';

/** What is known about a call when it is admitted. */
export interface CallFacts {
  callId: string;
  tool: string;
  agentId: string;
  decisionId: string;
  policyRevision: string;
  argumentsDigest: string;
  action: string;
  resource: string;
  namespace: string | undefined;
  traceparent: string | undefined;
  /** The front end that received the call: REST `POST /v1/tools/{tool}` (the default) or MCP `tools/call` at /mcp. */
  protocol?: 'rest' | 'mcp';
}

/**
 * Everything the executor records about one call: the call span (child of Envoy's upstream span, or of the
 * agent's traceparent) with a runner span whose context the Job receives as TRACEPARENT, Job lifecycle events,
 * metrics, and the audit record.
 */
export class CallTelemetry {
  constructor(
    private readonly deps: { metrics: ExecutorMetrics; tracing: Tracing | undefined; audit: AuditTrail | undefined; log: Logger },
  ) {}

  begin(facts: CallFacts): ActiveCall {
    return new ActiveCall(facts, this.deps);
  }
}

export class ActiveCall {
  private readonly started = Date.now();
  private readonly span: Span | undefined;
  private runSpan: Span | undefined;
  private jobCreatedAt: number | undefined;

  constructor(
    readonly facts: CallFacts,
    private readonly deps: { metrics: ExecutorMetrics; tracing: Tracing | undefined; audit: AuditTrail | undefined; log: Logger },
  ) {
    const tracing = deps.tracing;
    if (tracing?.enabled) {
      this.span = tracing.tracer.startSpan(
        'toolgate.executor.call',
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': 'POST',
            ...(facts.protocol === 'mcp' ? { 'url.path': '/mcp', 'mcp.method.name': 'tools/call', 'rpc.system': 'jsonrpc' } : { 'url.path': `/v1/tools/${facts.tool}` }),
            'gen_ai.operation.name': 'execute_tool',
            'gen_ai.tool.name': facts.tool,
            'gen_ai.tool.call.id': facts.callId,
            'toolgate.agent.id': facts.agentId,
            'toolgate.decision.id': facts.decisionId,
            'toolgate.policy.revision': facts.policyRevision,
            'toolgate.tool.arguments_digest': facts.argumentsDigest,
            ...(facts.namespace ? { 'k8s.namespace.name': facts.namespace } : {}),
          },
        },
        contextFrom(facts.traceparent),
      );
    }
  }

  /** What the runner needs: the trace context to continue, and where to report lifecycle events. */
  runnerHooks(runnerKind: string): { traceparent?: string; observe: (e: RunEvent) => void } {
    if (this.span && this.deps.tracing) {
      this.runSpan = this.deps.tracing.tracer.startSpan('toolgate.runner.run', { attributes: { 'toolgate.runner': runnerKind, 'gen_ai.tool.name': this.facts.tool } }, trace.setSpan(contextFrom(undefined), this.span));
    }
    const traceparent = this.runSpan ? traceparentOf(this.runSpan) : this.facts.traceparent;
    return {
      ...(traceparent ? { traceparent } : {}),
      observe: (e) => this.observe(e),
    };
  }

  private observe(e: RunEvent): void {
    const now = Date.now();
    if (e.kind === 'job.created') this.jobCreatedAt = now;
    if (e.kind === 'pod.started' && this.jobCreatedAt !== undefined) this.deps.metrics.jobStart.observe((now - this.jobCreatedAt) / 1000);
    this.observePhase(e.kind, now);
    if (!this.runSpan) return;
    const { kind, ...rest } = e;
    const attributes: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(rest)) if (v !== null && v !== undefined) attributes[k === 'job' ? 'k8s.job.name' : k === 'namespace' ? 'k8s.namespace.name' : k === 'pod' ? 'k8s.pod.name' : `toolgate.${k}`] = v as string | number;
    this.runSpan.addEvent(kind, attributes);
  }

  /** Pod phases as the runner saw them: each phase ends where the next begins. */
  private readonly phaseMarks = new Map<string, number>();
  private observePhase(kind: RunEvent['kind'], now: number): void {
    const phases: Partial<Record<RunEvent['kind'], [phase: string, since: RunEvent['kind']]>> = {
      'pod.scheduled': ['queued', 'job.created'],
      'container.started': ['starting', 'pod.scheduled'],
      'job.finished': ['running', 'container.started'],
      // A warm pod: lock taken (the call's Job, held) -> the pod has its call: the lock, the claim and the hand-off.
      'pod.claimed': ['claiming', 'job.created'],
      // claimed -> result is the whole run (it was scheduled and started before the call).
      'pod.finished': ['running', 'pod.claimed'],
    };
    this.phaseMarks.set(kind, now);
    const p = phases[kind];
    const since = p ? this.phaseMarks.get(p[1]) : undefined;
    if (p && since !== undefined) this.deps.metrics.callPhase.observe({ phase: p[0] }, (now - since) / 1000);
  }

  /** Records the end of the call once (a replayed retry records nothing: the call was recorded when it ran). */
  finish(outcome: ToolOutcome | undefined, httpStatus: number, opts: { replayed: boolean; resultBytes?: number; resultDigest?: string }): void {
    const status = outcome?.status ?? 'rejected';
    if (this.runSpan) {
      if (outcome && outcome.status !== 'succeeded') this.runSpan.setStatus({ code: SpanStatusCode.ERROR, message: 'error' in outcome ? outcome.error : outcome.status });
      this.runSpan.end();
    }
    if (this.span) {
      this.span.setAttributes({ 'http.response.status_code': httpStatus, 'toolgate.call.outcome': status, 'toolgate.call.replayed': opts.replayed });
      if (opts.resultBytes !== undefined) this.span.setAttribute('toolgate.result.size_bytes', opts.resultBytes);
      if (opts.resultDigest) this.span.setAttribute('toolgate.result.digest', opts.resultDigest);
      if (outcome && (outcome.status === 'failed' || outcome.status === 'unavailable')) {
        this.span.setAttribute('error.type', outcome.status);
        this.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
      } else if (httpStatus >= 500 || (outcome && outcome.status !== 'succeeded')) {
        this.span.setStatus({ code: SpanStatusCode.ERROR, message: status });
      }
      this.span.end();
    }
    if (opts.replayed) return;
    const m = this.deps.metrics;
    const f = this.facts;
    m.calls.inc({ tool: f.tool, outcome: status, http_status: String(httpStatus) });
    if (outcome && 'durationMs' in outcome) m.callDuration.observe({ tool: f.tool, outcome: status }, outcome.durationMs / 1000);
    m.toolCalls.inc({ agent_id: f.agentId, action: f.action, resource: f.resource, result: status === 'succeeded' ? 'allowed' : 'error' });
    if (this.deps.audit) {
      this.deps.audit
        .append({
          kind: 'tool_call',
          call_id: f.callId,
          agent_id: f.agentId,
          tool: f.tool,
          action: f.action,
          resource: f.resource,
          namespace: f.namespace ?? null,
          arguments_digest: f.argumentsDigest,
          decision_id: f.decisionId,
          policy_revision: f.policyRevision,
          result_status: status,
          http_status: httpStatus,
          result_digest: opts.resultDigest ?? null,
          error: outcome && 'error' in outcome ? outcome.error : null,
          started_at: new Date(this.started).toISOString(),
          duration_ms: Date.now() - this.started,
          trace_id: this.span?.spanContext().traceId ?? traceIdOf(f.traceparent) ?? null,
        })
        .catch((err: unknown) => this.deps.log.error('audit record could not be written', { call_id: f.callId, cause: errorMessage(err) }));
    }
  }
}

function traceIdOf(traceparent: string | undefined): string | undefined {
  const parts = traceparent?.split('-');
  return parts && parts.length >= 4 && parts[1]?.length === 32 ? parts[1] : undefined;
}
