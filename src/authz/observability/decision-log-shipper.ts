import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { Counter, Gauge } from 'prom-client';
import { errorMessage, type Logger } from '../../shared/logger.js';
import type { DecisionLogsConfig } from '../config.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { ServiceClient } from '../opa-config/service-client.js';
import type { DecisionRecord } from './decision-log.js';
import type { DecisionLogMask, MaskableEvent } from './decision-log-mask.js';

const gzip = promisify(gzipCallback);

/**
 * A decision log event in OPA's format (https://www.openpolicyagent.org/docs/management-decision-logs), so
 * the tools that read OPA's decision logs read toolgate's.
 */
export interface OpaDecisionEvent extends MaskableEvent {
  labels: Record<string, string>;
  decision_id: string;
  path: string;
  input?: JsonObject;
  result?: unknown;
  bundles: Record<string, { revision: string }>;
  requested_by: string;
  timestamp: string;
  metrics: Record<string, number>;
  error?: { code: string; message: string };
}

export interface ShipperOptions {
  config: DecisionLogsConfig;
  /** The decision_logs service; absent with console only. */
  client: ServiceClient | undefined;
  decisionPath: string;
  bundleName: string;
  mask: DecisionLogMask;
  metrics: { events: Counter<'outcome'>; uploads: Counter<'outcome'>; buffered: Gauge };
  log: Logger;
  /** Where console events go (OPA prints them with msg "Decision Log"). */
  console: Logger;
  version: string;
}

/**
 * Ships decision events as OPA does: buffered (bounded by count; the oldest is dropped and counted when full),
 * uploaded as gzip-compressed JSON arrays of at most upload_size_limit_bytes each at a random interval in
 * [min_delay, max_delay], retried with exponential backoff, and never in the way of an answer: events are
 * added after the answer left, and uploading is a timer's work.
 */
export class DecisionLogShipper {
  private buffer: OpaDecisionEvent[] = [];
  /** Approximate bytes of each buffered event (parallel to `buffer`) and their sum. */
  private sizes: number[] = [];
  private bufferedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private uploading: Promise<void> | undefined;
  private readonly labels: Record<string, string>;

  constructor(private readonly opts: ShipperOptions) {
    // OPA adds the instance id and its version to the configured labels.
    this.labels = { id: randomUUID(), version: opts.version, ...opts.config.labels };
  }

  start(): void {
    if (this.opts.client) this.schedule();
  }

  /** One decision, after its answer was sent. */
  add(record: DecisionRecord, input: JsonObject | undefined, result: unknown, requestedBy: string, inputBytes = 0): void {
    const event: OpaDecisionEvent = {
      labels: this.labels,
      decision_id: record.decision_id,
      path: this.opts.decisionPath,
      bundles: { [this.opts.bundleName]: { revision: record.policy_revision ?? '' } },
      requested_by: requestedBy,
      timestamp: new Date().toISOString(),
      metrics: metricsOf(record),
    };
    // Masking edits the event: give it its own copy (the input object is shared with recorders).
    if (input !== undefined) event.input = this.opts.mask.masks() ? (structuredClone(input) as JsonObject) : input;
    if (result !== undefined) event.result = result;
    if (record.result === 'error') event.error = { code: record.code ?? 'policy_error', message: record.cause ?? record.reasons[0] ?? '' };
    try {
      if (this.opts.mask.drops(event)) {
        this.opts.metrics.events.inc({ outcome: 'dropped_by_policy' });
        return;
      }
      this.opts.mask.apply(event);
    } catch (err) {
      // An event that could not be masked may hold what the mask hides: it is not logged.
      this.opts.metrics.events.inc({ outcome: 'dropped_mask_error' });
      this.opts.log.error('decision log mask failed; event dropped', { decision_id: record.decision_id, cause: errorMessage(err) });
      return;
    }
    if (this.opts.config.console) this.opts.console.info('Decision Log', { ...event });
    if (!this.opts.client) return;
    this.push([event], [inputBytes + 512], false);
    this.trim();
  }

  /** Uploads everything buffered now (at stop, and in tests). */
  async flush(): Promise<void> {
    if (this.uploading) await this.uploading;
    this.uploading = this.upload().finally(() => {
      this.uploading = undefined;
    });
    await this.uploading;
  }

  async stop(timeoutMs = 2000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.opts.client) return;
    await Promise.race([this.flush().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.opts.client.close();
  }

  private push(events: OpaDecisionEvent[], sizes: number[], front: boolean): void {
    if (front) {
      this.buffer = [...events, ...this.buffer];
      this.sizes = [...sizes, ...this.sizes];
    } else {
      this.buffer.push(...events);
      this.sizes.push(...sizes);
    }
    for (const n of sizes) this.bufferedBytes += n;
  }

  /** Drops the oldest events while the buffer is over either bound (count or bytes), counting each. */
  private trim(): void {
    const { bufferSizeLimitEvents: maxEvents, bufferSizeLimitBytes: maxBytes } = this.opts.config;
    let drop = 0;
    let bytes = this.bufferedBytes;
    while (drop < this.buffer.length && (this.buffer.length - drop > maxEvents || bytes > maxBytes)) bytes -= this.sizes[drop++] as number;
    if (drop > 0) {
      this.buffer.splice(0, drop);
      this.sizes.splice(0, drop);
      this.bufferedBytes = bytes;
      this.opts.metrics.events.inc({ outcome: 'dropped_buffer_full' }, drop);
    }
    this.opts.metrics.buffered.set(this.buffer.length);
  }

  private schedule(): void {
    const { minDelaySeconds: min, maxDelaySeconds: max } = this.opts.config;
    // After failures: exponential backoff from min, capped at max; otherwise a random point in [min, max].
    const seconds = this.failures > 0 ? Math.min(max, min * 2 ** (this.failures - 1)) * (0.8 + Math.random() * 0.4) : min + Math.random() * (max - min);
    this.timer = setTimeout(() => {
      this.flush()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer) this.schedule();
        });
    }, seconds * 1000);
    this.timer.unref();
  }

  private async upload(): Promise<void> {
    const client = this.opts.client;
    if (!client || this.buffer.length === 0) return;
    const events = this.buffer;
    const sizes = this.sizes;
    this.buffer = [];
    this.sizes = [];
    this.bufferedBytes = 0;
    this.opts.metrics.buffered.set(0);
    const sizeOf = new Map(events.map((e, i) => [e, sizes[i] as number]));
    const chunks = await this.chunk(events);
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i] as { events: OpaDecisionEvent[]; body: Buffer };
      try {
        const res = await client.request({
          method: 'POST',
          resource: this.opts.config.resource,
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: chunk.body,
          timeoutMs: 10_000,
        });
        if (res.status < 200 || res.status > 299) throw new Error(`decision log service answered ${res.status}`);
      } catch (err) {
        this.failures++;
        this.opts.metrics.uploads.inc({ outcome: 'failed' });
        this.opts.log.warn('decision log upload failed; retrying with backoff', { cause: errorMessage(err), events: events.length, failures: this.failures });
        // Back in front of what arrived meanwhile; the bounds apply to the whole (oldest dropped first).
        const back = chunks.slice(i).flatMap((c) => c.events);
        this.push(back, back.map((e) => sizeOf.get(e) ?? 512), true);
        this.trim();
        return;
      }
      this.failures = 0;
      this.opts.metrics.uploads.inc({ outcome: 'ok' });
      this.opts.metrics.events.inc({ outcome: 'shipped' }, chunk.events.length);
    }
  }

  /** Gzip JSON arrays no larger than upload_size_limit_bytes; an event that alone exceeds it is dropped. */
  private async chunk(events: OpaDecisionEvent[]): Promise<{ events: OpaDecisionEvent[]; body: Buffer }[]> {
    const limit = this.opts.config.uploadSizeLimitBytes;
    const body = await gzip(JSON.stringify(events));
    if (body.length <= limit) return [{ events, body }];
    if (events.length === 1) {
      this.opts.metrics.events.inc({ outcome: 'dropped_too_large' });
      this.opts.log.warn('decision log event larger than upload_size_limit_bytes; dropped', { decision_id: events[0]?.decision_id, bytes: body.length });
      return [];
    }
    const half = Math.ceil(events.length / 2);
    return [...(await this.chunk(events.slice(0, half))), ...(await this.chunk(events.slice(half)))];
  }
}

function metricsOf(r: DecisionRecord): Record<string, number> {
  const m: Record<string, number> = { timer_server_handler_ns: Math.round(r.duration_ms * 1e6) };
  if (r.evaluation_ms !== undefined) m.timer_rego_query_eval_ns = Math.round(r.evaluation_ms * 1e6);
  return m;
}
