import { context, propagation, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { credentials } from '@grpc/grpc-js';

/**
 * The runner's tracer: a trace provider, a batch processor and the OTLP/gRPC exporter, and nothing else.
 * The services' NodeSDK (src/shared/tracing.ts) also loads metrics, logs, resource detectors and the
 * configuration of every exporter; for a process that lives for one call that was ~40% of its traced
 * start-up (bench/README.md "Runner start-up"). Same service name, same W3C propagation, same exporter
 * settings (plaintext for unix: endpoints, the span relay; the exporter's own defaults elsewhere).
 */
export function startRunnerTracing(endpoint: string): { shutdown(): Promise<void> } {
  const exporter = new OTLPTraceExporter({ url: endpoint, ...(endpoint.startsWith('unix:') ? { credentials: credentials.createInsecure() } : {}) });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'toolgate-runner' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 200 })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return { shutdown: () => provider.shutdown() };
}

/** The context a W3C traceparent continues (none: a new trace). */
export function contextFrom(traceparent: string | undefined): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}
