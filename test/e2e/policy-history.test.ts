import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { ensureDevCredentials, signAgentJwt, type DevCredentials } from '../../src/gateway/dev-credentials.js';
import { renderEnvoyConfig } from '../../src/gateway/envoy-template.js';
import { authzServerTls, ensureInternalCredentials, envoyAuthzTlsValues, type InternalCredentials } from '../../src/gateway/internal-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { startEnvoy } from '../support/envoy-process.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { waitUntil } from '../support/wait-until.js';
import { policiesWith } from './policy-bundles.js';
import { parseBundleArchive, type PolicyBundle } from '../../src/authz/bundle/bundle.js';
import { bundleReadsHistory } from '../../src/authz/history/bundle-reads-history.js';
import { buildSeedBundle } from './stack.js';

/**
 * input.history through the real Envoy with the real Redis: two authz replicas running a bundle with the
 * example loop guard and budget (policies/examples) share one Redis; a third replica runs the seed bundle
 * (which does not read history) behind its own Envoy, on the same Redis. The windows are shortened to
 * seconds (history.windows_ms) so recovery can be watched.
 */
const MAX_SAME = 3;
const SHORT_MS = 2500;
const LONG_MS = 6000;

const GUARDS = `package agent.authz

import rego.v1

deny if data.examples.loop_guard.refused

reasons contains data.examples.loop_guard.reason if data.examples.loop_guard.refused

deny if data.examples.budget.refused

reasons contains data.examples.budget.reason if data.examples.budget.refused

cost := data.examples.budget.cost
`;

interface Replica {
  opsPort: number;
  proc: ManagedProcess;
}

interface Gateway {
  port: number;
  replicas: Replica[];
  envoy: ManagedProcess;
}

let dir: string;
let logDir: string;
let creds: DevCredentials;
let internal: InternalCredentials;
let upstream: EchoUpstream;
let redis: TestRedis;
let guarded: Gateway;
let plain: Gateway;
let jwt: string;
let bundles: { guards: string; seed: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'toolgate-history-'));
  logDir = join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  [redis, creds] = await Promise.all([startRedis(), ensureDevCredentials(join(dir, 'creds'))]);
  internal = await ensureInternalCredentials(join(dir, 'creds', 'internal'));
  upstream = await startEchoUpstream();
  const data = {
    authorized_agents: ['ops-bot', 'budget-bot'],
    loop_guard: { max_same_calls_per_minute: MAX_SAME },
    budget: { units_per_hour: 10, costs: { echo: 0, sleep: 4 } },
  };
  const guardsDir = await policiesWith(dir, 'guards', { 'agent/authz/guards.rego': GUARDS, 'data.json': JSON.stringify(data) });
  // The seed is built from a copy under `dir`, whose path says "history": its module then names that path.
  const seedDir = join(dir, 'seed-policies');
  await cp(join(REPO_ROOT, 'policies'), seedDir, { recursive: true });
  const [guardsBundle, seedBundle] = await Promise.all([buildSeedBundle(dir, 'guards-e2e', guardsDir), buildSeedBundle(dir, undefined, seedDir)]);
  bundles = { guards: guardsBundle, seed: seedBundle };
  guarded = await startGateway('guarded', guardsBundle, 2);
  plain = await startGateway('plain', seedBundle, 1);
  jwt = await signAgentJwt(creds, { sub: 'ops-bot' });
}, 240_000);

afterAll(async () => {
  for (const g of [guarded, plain]) {
    await g?.envoy.stop();
    for (const r of g?.replicas ?? []) await r.proc.stop();
  }
  await upstream?.close();
  await redis?.stop();
});

async function startGateway(name: string, bundle: string, n: number): Promise<Gateway> {
  const replicas: (Replica & { grpcPort: number })[] = [];
  for (let i = 0; i < n; i++) {
    const [grpcPort, opsPort] = [await freePort(), await freePort()];
    const configPath = join(dir, `authz-${name}-${i}.yaml`);
    await writeFile(
      configPath,
      toYaml({
        grpc: { address: `127.0.0.1:${grpcPort}`, tls: authzServerTls(internal) },
        http: { address: `127.0.0.1:${opsPort}` },
        catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
        policy: { engine: 'embedded', decision: 'agent/authz', bundle: { file: bundle } },
        decision_key_file: creds.decisionKeyPath,
        store: { redis_url: redis.url, key_prefix: 'e2e:', command_timeout_ms: 200 },
        history: { windows_ms: { '1m': SHORT_MS, '1h': LONG_MS } },
      }),
    );
    const proc = startProcess({ name: `authz-${name}-${i}`, command: process.execPath, args: [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], logDir });
    replicas.push({ grpcPort, opsPort, proc });
  }
  for (const r of replicas) await waitForHttp(`http://127.0.0.1:${r.opsPort}/readyz`, { process: r.proc, timeoutMs: 60_000 });
  const [http, mtls, admin] = [await freePort(), await freePort(), await freePort()];
  const envoyConfig = join(dir, `envoy-${name}.yaml`);
  await writeFile(
    envoyConfig,
    await renderEnvoyConfig({
      ADMIN_PORT: admin,
      LISTEN_ADDRESS: '127.0.0.1',
      HTTP_PORT: http,
      MTLS_PORT: mtls,
      AUTHZ_HOST: '127.0.0.1',
      AUTHZ_PORT: replicas[0]?.grpcPort as number,
      AUTHZ_ENDPOINTS: replicas.map((r) => ({ host: '127.0.0.1', port: r.grpcPort })),
      AUTHZ_TIMEOUT: '2s',
      AUTHZ_HEALTH_CHECKS: true,
      ...envoyAuthzTlsValues(internal),
      EXECUTOR_HOST: '127.0.0.1',
      EXECUTOR_PORT: upstream.port,
      MAX_REQUEST_BYTES: 1024 * 1024,
      TLS_CERT_PATH: creds.serverCertPath,
      TLS_KEY_PATH: creds.serverKeyPath,
      CLIENT_CA_PATH: creds.caCertPath,
      JWKS_PATH: creds.jwksPath,
      JWT_ISSUER: creds.jwtIssuer,
      JWT_AUDIENCE: creds.jwtAudience,
      ACCESS_LOG_PATH: join(dir, `access-${name}.log`),
    }),
  );
  const envoy = await startEnvoy({ configPath: envoyConfig, logDir, adminPort: admin, name: `envoy-${name}` });
  await waitUntil(`Envoy ${name} sees ${n} healthy authz replicas`, async () => {
    const text = await fetch(`http://127.0.0.1:${admin}/clusters`).then((r) => r.text());
    return text.split('\n').filter((l) => l.startsWith('toolgate_authz::') && l.includes('::health_flags::healthy')).length >= n;
  }, 30_000, 200);
  return { port: http, replicas, envoy };
}

interface Answer {
  status: number;
  json: { error?: { code?: string; message?: string; reasons?: string[] } } | undefined;
}

function call(g: Gateway, tool: string, args: unknown, token = jwt): Promise<Answer> {
  const body = JSON.stringify(args);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: g.port, path: `/v1/tools/${tool}`, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let json: Answer['json'];
          try {
            json = JSON.parse(Buffer.concat(chunks).toString()) as Answer['json'];
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function metric(r: Replica, series: string): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${r.opsPort}/metrics`).then((res) => res.text());
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const OBSERVED_OK = 'toolgate_history_store_operations_total{operation="observe",outcome="ok"}';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('history as policy input, through Envoy, with Redis', () => {
  it('which bundles read history is told from their wasm: the guards do, the seed does not (its file paths may say "history")', async () => {
    const [guards, seed] = await Promise.all([bundles.guards, bundles.seed].map(async (f) => parseBundleArchive(await readFile(f))));
    expect(bundleReadsHistory(guards as PolicyBundle)).toBe(true);
    // The seed's module carries its sources' paths, which here contain "toolgate-history-": not a field name.
    expect(Buffer.from((seed as PolicyBundle).wasm[0]?.bytes ?? []).includes(Buffer.from('history'))).toBe(true);
    expect(bundleReadsHistory(seed as PolicyBundle)).toBe(false);
  });

  it('the loop guard trips at exactly N+1 across two replicas sharing the counts, and recovers after the window', async () => {
    const before = await Promise.all(guarded.replicas.map((r) => metric(r, OBSERVED_OK)));
    // Several distinct calls, each repeated: every sequence must trip at exactly N+1 wherever Envoy sends it.
    for (const message of ['one', 'two', 'three']) {
      for (let i = 1; i <= MAX_SAME; i++) {
        const a = await call(guarded, 'echo', { message });
        expect(a.status, `call ${i} of "${message}": ${JSON.stringify(a.json)}`).toBe(200);
      }
      const refused = await call(guarded, 'echo', { message });
      expect(refused.status).toBe(403);
      expect(refused.json?.error?.code).toBe('policy_denied');
      expect(refused.json?.error?.reasons).toContain(`the same call was made ${MAX_SAME} times in the last minute; wait or change the arguments`);
      // Other arguments are another call.
      expect((await call(guarded, 'echo', { message: `${message}-other` })).status).toBe(200);
    }
    // Both replicas decided some of these checks (Envoy round-robins): the counts they saw were shared.
    const after = await Promise.all(guarded.replicas.map((r) => metric(r, OBSERVED_OK)));
    after.forEach((n, i) => expect(n, `replica ${i} observed history`).toBeGreaterThan(before[i] as number));

    // The window passes without that call: it is allowed again, and counted afresh.
    await sleep(SHORT_MS + 300);
    for (let i = 1; i <= MAX_SAME; i++) expect((await call(guarded, 'echo', { message: 'one' })).status).toBe(200);
    expect((await call(guarded, 'echo', { message: 'one' })).status).toBe(403);
  }, 60_000);

  it('the budget: the policy\'s cost is spent after each allow, a call that would overspend is refused, and the hour slides', async () => {
    const token = await signAgentJwt(creds, { sub: 'budget-bot' });
    // sleep costs 4 of 10 units (data.budget): 0 -> 4 -> 8, then 8 + 4 > 10.
    expect((await call(guarded, 'sleep', { seconds: 1 }, token)).status).toBe(200);
    expect((await call(guarded, 'sleep', { seconds: 2 }, token)).status).toBe(200);
    const refused = await call(guarded, 'sleep', { seconds: 3 }, token);
    expect(refused.status).toBe(403);
    expect(refused.json?.error?.reasons?.[0]).toMatch(/^the hourly budget of 10 units would be exceeded \(spent 8 in the last hour, this call costs 4\)/);
    // echo costs nothing: still allowed.
    expect((await call(guarded, 'echo', { message: 'free' }, token)).status).toBe(200);
    // The "hour" (6 s here) slides: spending ages out, in buckets of a sixtieth of it.
    // (Each attempt with other arguments: the loop guard would refuse the same call repeated.)
    let attempt = 0;
    await waitUntil('the budget frees up', async () => (await call(guarded, 'sleep', { seconds: 4 + ++attempt / 100 }, token)).status === 200, LONG_MS + 5000, 500);
  }, 60_000);

  it('Redis killed: the history-reading policy fails closed naming the store, the other bundle keeps working; both recover', async () => {
    await redis.kill();
    try {
      const refused = await call(guarded, 'echo', { message: 'while down' });
      expect(refused.status).toBe(503);
      expect(refused.json?.error?.code).toBe('history_unavailable');
      expect(refused.json?.error?.message).toContain(`the history store redis://127.0.0.1:${redis.port}/0`);
      expect(refused.json?.error?.message).toContain('reads input.history');
      // The seed bundle does not read history: unaffected (no store round trip at all).
      for (let i = 0; i < 5; i++) {
        const a = await call(plain, 'echo', { message: 'plain' });
        expect(a.status, JSON.stringify(a.json)).toBe(200);
      }
      expect(await metric(plain.replicas[0] as Replica, OBSERVED_OK)).toBe(0);
      // The operator is told: a log line and a metric.
      const logs = (await Promise.all(guarded.replicas.map((r) => readFile(r.proc.logPath, 'utf8')))).join('\n');
      expect(logs).toContain('history store unavailable');
      const unavailable = await Promise.all(guarded.replicas.map((r) => metric(r, 'toolgate_history_store_operations_total{operation="observe",outcome="unavailable"}')));
      expect(unavailable.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await redis.restart();
    }
    await waitUntil('the guarded gateway decides again', async () => (await call(guarded, 'echo', { message: `after ${Date.now()}` })).status === 200, 20_000, 200);
  }, 60_000);
});
