import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type CallResult = 'allowed' | 'denied' | 'error';

/** The authz server's Prometheus metrics; one registry per server so tests can run several in one process. */
export class AuthzMetrics {
  readonly registry = new Registry();
  readonly toolCalls = new Counter({
    name: 'agent_tool_calls_total',
    help: 'Tool calls by agent, action, resource and result. The authz server counts the calls it refused (denied) or could not decide (error); the executor counts the calls it ran. Each call is counted once across both.',
    labelNames: ['agent_id', 'action', 'resource', 'result'] as const,
    registers: [this.registry],
  });
  readonly decisions = new Counter({
    name: 'toolgate_authz_decisions_total',
    help: 'Checks answered, by result (allowed | denied | error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly decisionDuration = new Histogram({
    name: 'toolgate_authz_decision_duration_seconds',
    help: 'Time from receiving a Check to answering it, by result.',
    labelNames: ['result'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly evaluationDuration = new Histogram({
    name: 'toolgate_policy_evaluation_duration_seconds',
    help: 'Time spent in the policy engine per decision.',
    labelNames: ['engine'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [this.registry],
  });
  readonly bundleInfo = new Gauge({
    name: 'toolgate_policy_bundle_info',
    help: 'The active policy bundle (value 1) by revision.',
    labelNames: ['revision'] as const,
    registers: [this.registry],
  });
  readonly bundleActivations = new Counter({
    name: 'toolgate_policy_bundle_activations_total',
    help: 'Bundle activations by outcome (activated | rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly bundleRejections = new Counter({
    name: 'toolgate_policy_bundle_rejections_total',
    help: 'Bundles refused, by reason (corrupt | signature | evaluation | engine); the last good bundle stays active.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly decisionLogEvents = new Counter({
    name: 'toolgate_decision_logs_events_total',
    help: 'Decision log events (OPA format) by outcome: shipped, or dropped because the buffer was full, the event was larger than an upload, or the drop policy said so.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly decisionLogUploads = new Counter({
    name: 'toolgate_decision_logs_uploads_total',
    help: 'Uploads of decision log batches to the decision_logs service, by outcome (ok | failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly decisionLogBuffered = new Gauge({
    name: 'toolgate_decision_logs_buffered_events',
    help: 'Decision log events waiting for upload.',
    registers: [this.registry],
  });

  readonly shadowEvaluations = new Counter({
    name: 'toolgate_shadow_evaluations_total',
    help: 'Decisions the shadow (candidate) bundle evaluated beside the active one, by outcome (agreed | diverged).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly shadowDivergences = new Counter({
    name: 'toolgate_shadow_divergences_total',
    help: 'Decisions where the shadow bundle differs from the active one, by tool and direction (allow_to_deny | deny_to_allow | reasons_changed | candidate_error | candidate_fixes_error).',
    labelNames: ['tool', 'direction'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  private readonly decisionChildren = new Map<CallResult, ReturnType<Counter<'result'>['labels']>>();

  /** The decisions counter for one result, looked up once (labels() hashes its arguments on every call). */
  decisionsBy(result: CallResult): ReturnType<Counter<'result'>['labels']> {
    let child = this.decisionChildren.get(result);
    if (!child) {
      child = this.decisions.labels(result);
      this.decisionChildren.set(result, child);
    }
    return child;
  }

  setActiveRevision(revision: string): void {
    this.bundleInfo.reset();
    this.bundleInfo.set({ revision }, 1);
  }
}
