import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';

/**
 * The runner's spans: `execute_tool {tool}` continues the executor's run span (TRACEPARENT from the Job's env)
 * and each call a tool makes to a target API is a CLIENT child span. The OpenTelemetry SDK is loaded only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, so a sandboxed call without a collector pays nothing for it; spans are
 * flushed before the process exits (a Job's pod has no second chance).
 */
export interface RunnerTelemetry {
  toolSpan: Span;
  /** Runs one call to a target API (the Kubernetes API...) in its own CLIENT span. */
  apiCall<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T>;
  end(outcome: { status: 'ok' } | { status: 'error'; code: string; message: string }, resultBytes: number): Promise<void>;
}

export async function startRunnerTelemetry(opts: { tool: string; callId: string; traceparent: string | undefined; endpoint: string | undefined }): Promise<RunnerTelemetry> {
  let parent: Context = ROOT_CONTEXT;
  let shutdown = async (): Promise<void> => undefined;
  if (opts.endpoint) {
    const tracing = await import('../shared/tracing.js');
    shutdown = tracing.startTracing('toolgate-runner', opts.endpoint).shutdown;
    parent = tracing.contextFrom(opts.traceparent);
  }
  const tracer = trace.getTracer('toolgate');
  const toolSpan = tracer.startSpan(
    `execute_tool ${opts.tool}`,
    { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': opts.tool, 'gen_ai.tool.call.id': opts.callId } },
    parent,
  );
  const inTool = trace.setSpan(parent, toolSpan);
  return {
    toolSpan,
    async apiCall(name, attributes, fn) {
      const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, inTool);
      try {
        return await context.with(trace.setSpan(inTool, span), fn);
      } catch (err) {
        const status = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
        if (typeof status === 'number') span.setAttribute('http.response.status_code', status);
        span.setAttribute('error.type', typeof status === 'number' ? String(status) : 'error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
    async end(outcome, resultBytes) {
      toolSpan.setAttributes({ 'toolgate.result.status': outcome.status, 'toolgate.result.size_bytes': resultBytes });
      if (outcome.status === 'error') {
        toolSpan.setAttribute('error.type', outcome.code);
        toolSpan.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
      }
      toolSpan.end();
      // Never let a collector that is down keep the Job alive or change its result.
      await Promise.race([shutdown().catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    },
  };
}
