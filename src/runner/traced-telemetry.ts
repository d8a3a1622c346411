import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { contextFrom, startRunnerTracing } from './runner-tracing.js';
import type { RunnerTelemetry, StartCallTelemetry } from './telemetry.js';

/**
 * The traced runner (loaded only with an OTLP endpoint): the SDK and its exporter start here, before the
 * call's span can be opened; spans are flushed before the process exits (a Job's pod has no second chance).
 */
export function startTracedTelemetry(endpoint: string): StartCallTelemetry {
  const { shutdown } = startRunnerTracing(endpoint);
  const tracer = trace.getTracer('toolgate');
  return (call): RunnerTelemetry => {
    const parent = contextFrom(call.traceparent);
    const toolSpan = tracer.startSpan(
      `execute_tool ${call.tool}`,
      { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': call.tool, 'gen_ai.tool.call.id': call.callId } },
      parent,
    );
    const inTool = trace.setSpan(parent, toolSpan);
    return {
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
  };
}
