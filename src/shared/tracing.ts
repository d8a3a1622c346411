import { context, propagation, ROOT_CONTEXT, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';

/**
 * OpenTelemetry for one service: OTLP/gRPC export to the collector named by the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT, W3C trace context propagation, no auto-instrumentation (toolgate creates the
 * spans that mean something: the decision, the call, the Job, the tool). Without an endpoint nothing is
 * recorded and the hot paths skip span attributes entirely (`enabled` is false).
 */
export interface Tracing {
  tracer: Tracer;
  enabled: boolean;
  /** Where spans go (OTLP/gRPC), when enabled. */
  endpoint?: string;
  shutdown(): Promise<void>;
}

export function startTracing(serviceName: string, endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT): Tracing {
  if (!endpoint) return { tracer: trace.getTracer('toolgate'), enabled: false, shutdown: async () => undefined };
  const sdk = new NodeSDK({
    serviceName,
    spanProcessors: [new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint, ...(endpoint.startsWith('unix:') ? { credentials: credentials.createInsecure() } : {}) }), { scheduledDelayMillis: 200 })],
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return { tracer: trace.getTracer('toolgate'), enabled: true, endpoint, shutdown: () => sdk.shutdown() };
}

/**
 * Plaintext for http:// and unix: endpoints (a local collector, the executor's span relay), TLS otherwise.
 * (The exporter itself is only told for unix:, where its default would ask for TLS; elsewhere its own
 * defaults keep honouring the OTEL_EXPORTER_OTLP_CERTIFICATE family.)
 */
export function grpcCredentialsFor(endpoint: string): ChannelCredentials {
  return /^(http:|unix:)/.test(endpoint) ? credentials.createInsecure() : credentials.createSsl();
}

/** The gRPC target of an OTLP endpoint URL: host:port, or the unix: address as it is. */
export function grpcTargetOf(endpoint: string): string {
  if (endpoint.startsWith('unix:')) return endpoint;
  return /^[a-z]+:\/\//.test(endpoint) ? new URL(endpoint).host : endpoint;
}

/** The context a W3C traceparent (from Envoy's gRPC metadata, an HTTP header or a Job's env) continues. */
export function contextFrom(traceparent: string | undefined, tracestate?: string): Context {
  if (!traceparent) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent };
  if (tracestate) carrier.tracestate = tracestate;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** The traceparent that makes `span` the parent of whatever receives it. */
export function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier.traceparent;
}
