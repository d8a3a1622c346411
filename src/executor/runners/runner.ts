import type { ToolDefinition } from '../../catalog/tool-catalog.js';
import type { Obligations } from '../../shared/obligations.js';

/** One authorized call, as every runner receives it. */
export interface ToolInvocation {
  /** Stable per call (and per idempotent retry); names the Job. */
  callId: string;
  tool: ToolDefinition;
  arguments: Record<string, unknown>;
  agentId: string;
  decisionId: string;
  policyRevision: string;
  /**
   * The call is named by the agent's Idempotency-Key (a retry may ask for it again), not by its decision
   * (which only one request can carry). Runners that share calls across executor replicas need to know.
   */
  idempotent?: boolean;
  /**
   * The policy's obligations, when they tighten the catalog (`tool.execution` already has them applied). A
   * runner holding something started with the catalog's settings (a warm pod) must not use it for this call.
   */
  obligations?: Obligations;
  traceparent?: string;
  /** Aborted when every client waiting for the call has gone: the run must stop and clean up. */
  signal: AbortSignal;
  /** Lifecycle events of the run (Job created, pod started, finished...), for traces and metrics. */
  observe?: (event: RunEvent) => void;
}

/**
 * A run's lifecycle, in order (each at most once; a run may skip some). Traces and metrics record them; an MCP
 * client that asked for progress sees them as notifications/progress.
 */
export type RunEvent =
  | { kind: 'job.created'; job: string; namespace: string }
  /** The Job has a pod (created, being scheduled or started). */
  | { kind: 'pod.started'; job: string; namespace: string }
  /** The Job's pod is running and ready: the tool is executing. */
  | { kind: 'pod.running'; job: string; namespace: string }
  | { kind: 'sandbox.started' }
  | { kind: 'pod.scheduled'; job: string; namespace: string; pod: string }
  | { kind: 'container.started'; job: string; namespace: string; pod: string }
  | { kind: 'pod.claimed'; pod: string; namespace: string }
  | { kind: 'pod.finished'; pod: string; namespace: string; outcome: string }
  | { kind: 'job.finished'; job: string; namespace: string; outcome: string }
  | { kind: 'sandbox.exited'; exitCode: number | null; durationMs: number };

export type ToolOutcome =
  | { status: 'succeeded'; result: unknown; durationMs: number }
  /** The tool crashed or reported an error. */
  | { status: 'failed'; exitCode: number | null; error: string; durationMs: number }
  | { status: 'timeout'; durationMs: number }
  | { status: 'cancelled'; durationMs: number }
  /** The runner's own infrastructure (cluster, sandbox) could not be used. */
  | { status: 'unavailable'; error: string }
  /**
   * Not run, because another executor replica already has this call: with other arguments under the same
   * Idempotency-Key, or under the very same decision (a replayed attestation).
   */
  | { status: 'refused'; code: 'idempotency_conflict' | 'attestation_used'; error: string };

/** call -> runner -> result: where a call runs (a Kubernetes Job, a local sandbox) is a runner's business. */
export interface Runner {
  readonly kind: 'local' | 'kubernetes';
  run(invocation: ToolInvocation): Promise<ToolOutcome>;
  close(): Promise<void>;
}
