import { Ajv } from 'ajv';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { metricValue, policiesWith, waitFor } from './policy-bundles.js';
import { startStack, type Stack } from './stack.js';

/**
 * OPA's decision log event, as documented (https://www.openpolicyagent.org/docs/management-decision-logs):
 * the fields OPA's own tools read, with their types. Each event the sink receives must match it.
 */
const OPA_EVENT_SCHEMA = {
  type: 'object',
  required: ['decision_id', 'path', 'bundles', 'labels', 'timestamp', 'metrics', 'requested_by'],
  properties: {
    decision_id: { type: 'string', minLength: 1 },
    path: { type: 'string', minLength: 1 },
    input: {},
    result: {},
    bundles: { type: 'object', additionalProperties: { type: 'object', required: ['revision'], properties: { revision: { type: 'string' } } } },
    labels: { type: 'object', required: ['id', 'version'], additionalProperties: { type: 'string' } },
    timestamp: { type: 'string', pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d)$' },
    metrics: { type: 'object', additionalProperties: { type: 'number' } },
    requested_by: { type: 'string' },
    erased: { type: 'array', items: { type: 'string' } },
    masked: { type: 'array', items: { type: 'string' } },
    error: { type: 'object' },
  },
  additionalProperties: false,
} as const;
const validEvent = new Ajv({ allErrors: true }).compile(OPA_EVENT_SCHEMA);

const MASK = `package system.log

mask contains "/input/attributes/request/http/body"
mask contains "/input/attributes/request/http/headers/authorization"
mask contains "/input/parsed_body"
mask contains "/input/tool_call/arguments"
mask contains "/input/name"
`;

const SECRET = 'sekret-value-4711';

interface Sink {
  url: string;
  events: Record<string, unknown>[];
  raw: string[];
  problems: string[];
  setFailing(on: boolean): void;
  close(): Promise<void>;
}

/** A decision log service as OPA expects one: POST <resource>, gzip JSON arrays. Checks every event. */
async function startSink(): Promise<Sink> {
  const sink = { events: [] as Record<string, unknown>[], raw: [] as string[], problems: [] as string[], failing: false };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (sink.failing) {
        res.writeHead(503).end();
        return;
      }
      if (req.method !== 'POST' || req.url !== '/logs') sink.problems.push(`${req.method} ${req.url}`);
      if (req.headers['content-encoding'] !== 'gzip' || req.headers['content-type'] !== 'application/json') sink.problems.push(`headers ${JSON.stringify(req.headers)}`);
      const text = gunzipSync(Buffer.concat(chunks)).toString('utf8');
      sink.raw.push(text);
      const batch = JSON.parse(text) as unknown;
      if (!Array.isArray(batch)) sink.problems.push('not an array');
      for (const e of batch as Record<string, unknown>[]) {
        if (!validEvent(e)) sink.problems.push(JSON.stringify(validEvent.errors));
        sink.events.push(e);
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ...sink,
    get events() {
      return sink.events;
    },
    setFailing: (on) => {
      sink.failing = on;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('decision logs shipped as OPA ships them', () => {
  let stack: Stack;
  let sink: Sink;

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'toolgate-dlogs-'));
    sink = await startSink();
    const bundle = join(work, 'masked.tar.gz');
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: await policiesWith(work, 'masked', { 'system/log/mask.rego': MASK }), outFile: bundle, revision: 'rev-masked', entrypoints: ['agent/authz', 'system/log/mask'] });
    stack = await startStack({
      engine: 'embedded',
      bundle: { file: bundle },
      editAuthzConfig: (c) => {
        const opa = {
          services: [{ name: 'logsink', url: sink.url }],
          labels: { app: 'toolgate-e2e', environment: 'test' },
          decision_logs: { service: 'logsink', console: true, reporting: { min_delay_seconds: 0.2, max_delay_seconds: 0.4, buffer_size_limit_events: 20 } },
          plugins: { envoy_ext_authz_grpc: { path: 'agent/authz' } },
        };
        writeFileSync(join(work, 'opa.yaml'), toYaml(opa));
        c.opa_config = join(work, 'opa.yaml');
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await sink?.close();
  });

  it('ships gzip JSON arrays of OPA events, with labels, bundle revisions and metrics, and masked fields never appear', async () => {
    const jwt = await stack.jwtFor('ops-bot');
    const calls = [
      await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: SECRET }, { jwt }),
      await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'production', name: SECRET }, { jwt }),
      await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'staging', name: SECRET, replicas: 3 }, { jwt }),
    ];
    expect(calls.map((c) => c.status)).toEqual([200, 403, 200]);
    const ids = calls.map((c) => c.headers['x-toolgate-decision-id'] as string);
    await waitFor(async () => ids.every((id) => sink.events.some((e) => e.decision_id === id)), 15_000, 'events shipped');
    expect(sink.problems).toEqual([]);
    const allowed = sink.events.find((e) => e.decision_id === ids[0]) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(allowed).toMatchObject({ path: 'agent/authz', bundles: { toolgate: { revision: 'rev-masked' } }, labels: { app: 'toolgate-e2e', environment: 'test' }, result: { allow: true } });
    expect(allowed.labels.version).toMatch(/^toolgate-/);
    expect(allowed.input.tool_call).toEqual({ protocol: 'rest', tool: 'k8s_get_deployment' });
    expect(allowed.input.agent_id).toBe('ops-bot');
    expect(allowed.erased).toEqual(expect.arrayContaining(['/input/tool_call/arguments', '/input/parsed_body', '/input/attributes/request/http/body', '/input/name']));
    expect(allowed.metrics.timer_rego_query_eval_ns).toBeGreaterThan(0);
    expect((sink.events.find((e) => e.decision_id === ids[1]) as Record<string, any>).result.allow).toBe(false); // eslint-disable-line @typescript-eslint/no-explicit-any
    // Masked: neither the argument nor the agent's token is in anything shipped or printed.
    for (const text of sink.raw) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(jwt);
    }
    const consoleLines = (await readFile(stack.authz.logPath, 'utf8')).split('\n').filter((l) => l.includes('"msg":"Decision Log"'));
    expect(consoleLines.length).toBeGreaterThanOrEqual(3);
    for (const l of consoleLines) expect(l).not.toContain(SECRET);
    // toolgate's own decision line is kept.
    expect((await readFile(stack.authz.logPath, 'utf8')).split('\n').filter((l) => l.includes('"msg":"decision"')).length).toBeGreaterThanOrEqual(3);
  });

  it('with the sink down, loses no more than the buffer (20 events) and counts every drop', async () => {
    const shippedBefore = sink.events.length;
    sink.setFailing(true);
    const jwt = await stack.jwtFor('ops-bot');
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: `app-${i}` }, { jwt });
      expect(res.status).toBe(200);
      ids.push(res.headers['x-toolgate-decision-id'] as string);
    }
    await waitFor(async () => (await metricValue(stack.authzHttpPort, 'toolgate_decision_logs_events_total{outcome="dropped_buffer_full"}')) >= 30, 15_000, 'drops counted');
    await waitFor(async () => (await metricValue(stack.authzHttpPort, 'toolgate_decision_logs_uploads_total{outcome="failed"}')) >= 2, 15_000, 'retries');
    sink.setFailing(false);
    await waitFor(async () => (await metricValue(stack.authzHttpPort, 'toolgate_decision_logs_buffered_events')) === 0, 20_000, 'buffer drained');
    const received = sink.events.slice(shippedBefore).filter((e) => ids.includes(e.decision_id as string));
    const dropped = await metricValue(stack.authzHttpPort, 'toolgate_decision_logs_events_total{outcome="dropped_buffer_full"}');
    expect(received.length).toBe(20);
    expect(dropped).toBe(30);
    // The newest 20 survive (the oldest are dropped first), each exactly once.
    expect(new Set(received.map((e) => e.decision_id))).toEqual(new Set(ids.slice(30)));
    expect(sink.problems).toEqual([]);
  });
});
