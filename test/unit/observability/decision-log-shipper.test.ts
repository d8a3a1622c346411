import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DecisionLogMask } from '../../../src/authz/observability/decision-log-mask.js';
import { DecisionLogShipper } from '../../../src/authz/observability/decision-log-shipper.js';
import type { DecisionRecord } from '../../../src/authz/observability/decision-log.js';
import { ServiceClient } from '../../../src/authz/opa-config/service-client.js';
import { createLogger } from '../../../src/shared/logger.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A real decision log service on loopback: records batches, or answers 503 while failing. */
async function sink(): Promise<{ url: string; batches: unknown[][]; failing: { on: boolean } }> {
  const batches: unknown[][] = [];
  const failing = { on: false };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failing.on) return void res.writeHead(503).end();
      batches.push(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as unknown[]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, batches, failing };
}

function shipper(url: string, limits: { events: number; bytes: number; upload: number }) {
  const registry = new Registry();
  const events = new Counter({ name: 'e', help: 'e', labelNames: ['outcome'] as const, registers: [registry] });
  const s = new DecisionLogShipper({
    config: { resource: '/logs', console: false, maskDecision: 'system/log/mask', bufferSizeLimitEvents: limits.events, bufferSizeLimitBytes: limits.bytes, uploadSizeLimitBytes: limits.upload, minDelaySeconds: 60, maxDelaySeconds: 60, labels: { app: 't' } },
    client: new ServiceClient({ name: 'logs', url, headers: {} }),
    decisionPath: 'agent/authz',
    bundleName: 'toolgate',
    mask: new DecisionLogMask(),
    metrics: { events, uploads: new Counter({ name: 'u', help: 'u', labelNames: ['outcome'] as const, registers: [registry] }), buffered: new Gauge({ name: 'b', help: 'b', registers: [registry] }) },
    log: createLogger('test'),
    console: createLogger('test'),
    version: 'test',
  });
  const dropped = async (): Promise<number> => (await events.get()).values.find((v) => v.labels.outcome === 'dropped_buffer_full')?.value ?? 0;
  return { s, dropped };
}

const record = (i: number): DecisionRecord => ({
  decision_id: `d${i}`, request_id: undefined, trace_id: undefined, agent_id: 'a', agent_auth: 'jwt', tool: 't', action: undefined, resource: undefined, namespace: undefined,
  allowed: true, result: 'allowed', code: undefined, reasons: [], policy_revision: 'r1', engine: 'embedded', evaluation_ms: 0.05, duration_ms: 0.2, http_status: 200,
});

describe('decision log shipping', () => {
  it('bounds the buffer by bytes as well as events, dropping the oldest, and keeps a failed batch for the retry', async () => {
    const k = await sink();
    const { s, dropped } = shipper(k.url, { events: 100, bytes: 10 * 1024, upload: 1024 * 1024 });
    k.failing.on = true;
    for (let i = 0; i < 10; i++) s.add(record(i), { pad: 'x'.repeat(3000) }, true, '', 3000);
    // 3 512 bytes each: two fit in 10 KiB.
    expect(await dropped()).toBe(8);
    await s.flush();
    expect(k.batches).toHaveLength(0);
    k.failing.on = false;
    await s.flush();
    expect(k.batches.flat().map((e) => (e as { decision_id: string }).decision_id)).toEqual(['d8', 'd9']);
    await s.stop();
  });

  it('splits uploads to stay under upload_size_limit_bytes', async () => {
    const k = await sink();
    const { s } = shipper(k.url, { events: 1000, bytes: 64 * 1024 * 1024, upload: 2048 });
    // Random-looking inputs do not compress: several uploads are needed.
    for (let i = 0; i < 20; i++) s.add(record(i), { noise: Array.from({ length: 40 }, (_, j) => ((i * 7919 + j * 104729) % 1_000_003).toString(36)).join('') }, true, '');
    await s.flush();
    expect(k.batches.length).toBeGreaterThan(1);
    expect(k.batches.flat()).toHaveLength(20);
    await s.stop();
  });
});
