import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ExecutorMetrics {
  readonly registry = new Registry();
  readonly calls = new Counter({
    name: 'toolgate_executor_calls_total',
    help: 'Tool calls answered by the executor, by tool, outcome and HTTP status.',
    labelNames: ['tool', 'outcome', 'http_status'] as const,
    registers: [this.registry],
  });
  readonly callDuration = new Histogram({
    name: 'toolgate_executor_call_duration_seconds',
    help: 'Duration of tool calls by tool and outcome.',
    labelNames: ['tool', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly toolCalls = new Counter({
    name: 'agent_tool_calls_total',
    help: 'Tool calls by agent, action, resource and result. The executor counts the calls it ran (allowed = succeeded, error = anything else); the authz server counts refusals. Each call is counted once across both.',
    labelNames: ['agent_id', 'action', 'resource', 'result'] as const,
    registers: [this.registry],
  });
  readonly jobStart = new Histogram({
    name: 'toolgate_executor_job_start_seconds',
    help: 'Time from creating a tool-call Job to its pod running.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly callPhase = new Histogram({
    name: 'toolgate_executor_call_phase_seconds',
    help: 'Phases of a call run in a pod: queued (Job -> pod scheduled), starting (scheduled -> container started), running (container started, or warm pod claimed -> result), claiming (warm: lock Job created -> the pod has its call).',
    labelNames: ['phase'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'toolgate_executor_calls_in_flight',
    help: 'Tool calls currently running.',
    registers: [this.registry],
  });

  readonly retainedBytes = new Gauge({
    name: 'toolgate_executor_retained_result_bytes',
    help: 'Bytes of call outcomes kept for Idempotency-Key retries (bounded by idempotency.max_bytes).',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
