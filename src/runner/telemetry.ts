import type { Attributes } from '@opentelemetry/api';

/**
 * The runner's spans: `execute_tool {tool}` continues the executor's run span (the call's traceparent) and
 * each call a tool makes to a target API is a CLIENT child span. Nothing of OpenTelemetry is loaded unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set: even its API package costs a runner ~50 ms of module loading, which a
 * sandboxed call without a collector would pay for nothing (see traced-telemetry.ts for the rest).
 *
 * Two steps, so a pre-started sandbox does the costly one before its call exists: `prepareRunnerTelemetry`
 * loads and starts the exporter, the returned function opens the call's span once its id and traceparent
 * are known.
 */
export interface RunnerTelemetry {
  /** Runs one call to a target API (the Kubernetes API...) in its own CLIENT span. */
  apiCall<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T>;
  end(outcome: { status: 'ok' } | { status: 'error'; code: string; message: string }, resultBytes: number): Promise<void>;
}

export interface RunnerCall {
  tool: string;
  callId: string;
  traceparent: string | undefined;
}

export type StartCallTelemetry = (call: RunnerCall) => RunnerTelemetry;

const UNTRACED: RunnerTelemetry = {
  apiCall: (_name, _attributes, fn) => fn(),
  end: async () => undefined,
};

export async function prepareRunnerTelemetry(endpoint: string | undefined): Promise<StartCallTelemetry> {
  if (!endpoint) return () => UNTRACED;
  const traced = await import('./traced-telemetry.js');
  return traced.startTracedTelemetry(endpoint);
}
