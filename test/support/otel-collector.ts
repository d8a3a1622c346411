import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureOtelCollector } from '../../src/toolchain/otelcol.js';
import { freePort, startProcess, waitForTcp, type ManagedProcess } from './managed-process.js';

/** One span as the collector's file exporter writes it (OTLP JSON), flattened with its service name. */
export interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status: { code?: number; message?: string };
}

export interface Collector {
  /** OTLP/gRPC endpoint for services (OTEL_EXPORTER_OTLP_ENDPOINT). */
  endpoint: string;
  grpcPort: number;
  process: ManagedProcess;
  spans(): Promise<CollectedSpan[]>;
  /** Waits until `predicate` holds over the spans of one trace (exports arrive in batches). */
  waitForTrace(traceId: string, predicate: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  stop(): Promise<void>;
}

/**
 * The real collector (built with the official builder) running the repo's configuration
 * (helm/toolgate/files/otel-collector.yaml: the same OTLP receivers and processors) with the backend and
 * Prometheus exporters replaced by a file exporter the tests read.
 */
/** host: the address to listen on (default loopback; a real node's bridge address when pods send spans). */
export async function startCollector(opts: { host?: string } = {}): Promise<Collector> {
  const host = opts.host ?? '127.0.0.1';
  const binary = await ensureOtelCollector();
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-otelcol-'));
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const config = parseYaml(await readFile(join(REPO_ROOT, 'helm', 'toolgate', 'files', 'otel-collector.yaml'), 'utf8')) as CollectorConfig;
  config.receivers.otlp.protocols.grpc.endpoint = `${host}:${grpcPort}`;
  config.receivers.otlp.protocols.http.endpoint = `${host}:${httpPort}`;
  config.processors.batch.timeout = '200ms';
  const outPath = join(dir, 'traces.jsonl');
  config.exporters = { file: { path: outPath, flush_interval: '100ms' } };
  const traces = config.service.pipelines.traces;
  if (!traces) throw new Error('otel-collector.yaml has no traces pipeline');
  config.service.pipelines = { traces: { ...traces, exporters: ['file'] } };
  config.service.telemetry = { metrics: { level: 'none' } };
  const configPath = join(dir, 'collector.yaml');
  await writeFile(configPath, toYaml(config));
  const proc = startProcess({ name: 'otelcol', command: binary, args: ['--config', configPath], env: { TOOLGATE_ENVIRONMENT: 'e2e' }, logDir: dir });
  await waitForTcp(grpcPort, { host, process: proc, timeoutMs: 30_000 });

  const spans = async (): Promise<CollectedSpan[]> => parseFileExport(await readFile(outPath, 'utf8').catch(() => ''));
  return {
    endpoint: `http://${host}:${grpcPort}`,
    grpcPort,
    process: proc,
    spans,
    async waitForTrace(traceId, predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const trace = (await spans()).filter((s) => s.traceId === traceId);
        if (predicate(trace)) return trace;
        if (Date.now() > deadline) throw new Error(`trace ${traceId} incomplete after ${timeoutMs} ms: ${trace.map((s) => `${s.service}:${s.name}`).join(', ') || 'no spans'}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop: () => proc.stop(),
  };
}

interface CollectorConfig {
  receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
  processors: { batch: { timeout: string } } & Record<string, unknown>;
  exporters: Record<string, unknown>;
  service: { pipelines: Record<string, { receivers: string[]; processors: string[]; exporters: string[] }>; telemetry?: unknown };
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

function value(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

function attributes(list: OtlpAttributes): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
}

/** The file exporter writes one ExportTraceServiceRequest (OTLP JSON: hex ids, string nanos) per line. */
export function parseFileExport(text: string): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const doc = JSON.parse(line) as {
      resourceSpans?: {
        resource?: { attributes?: OtlpAttributes };
        scopeSpans?: {
          spans?: {
            traceId: string;
            spanId: string;
            parentSpanId?: string;
            name: string;
            kind?: number;
            startTimeUnixNano: string;
            endTimeUnixNano: string;
            attributes?: OtlpAttributes;
            events?: { name: string; attributes?: OtlpAttributes }[];
            status?: { code?: number; message?: string };
          }[];
        }[];
      }[];
    };
    for (const rs of doc.resourceSpans ?? []) {
      const service = String(attributes(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          out.push({
            service,
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind ?? 0,
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
            attributes: attributes(s.attributes),
            events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
            status: s.status ?? {},
          });
        }
      }
    }
  }
  return out;
}
