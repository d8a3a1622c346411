import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { ensureDevCredentials, signAgentJwt, type DevCredentials } from '../../src/gateway/dev-credentials.js';
import { renderEnvoyConfig } from '../../src/gateway/envoy-template.js';
import { loadAttestationKey, verifyAttestation } from '../../src/shared/decision-attestation.js';
import { authzServerTls, ensureInternalCredentials, envoyAuthzTlsValues } from '../../src/gateway/internal-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { startEnvoy } from '../support/envoy-process.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { buildSeedBundle } from './stack.js';

/**
 * Three authz replicas behind one Envoy (the template's authz cluster, as Helm renders it over a headless
 * Service): checks spread evenly; a replica killed under load costs only the checks it had in flight (they
 * fail closed, 503), and one that is stopped (SIGTERM) drains without failing any. Load is bounded: a fixed
 * number of calls at a fixed concurrency, on loopback.
 */
const REPLICAS = 3;
const CONCURRENCY = 8;

interface Replica {
  grpcPort: number;
  opsPort: number;
  proc: ManagedProcess;
}

let dir: string;
let creds: DevCredentials;
let upstream: EchoUpstream;
let envoy: ManagedProcess;
let envoyPort: number;
let jwt: string;
const replicas: Replica[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'toolgate-scale-'));
  const logDir = join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  creds = await ensureDevCredentials(join(dir, 'creds'));
  const internal = await ensureInternalCredentials(join(dir, 'creds', 'internal'));
  const bundle = await buildSeedBundle(dir);
  upstream = await startEchoUpstream();
  for (let i = 0; i < REPLICAS; i++) {
    const [grpcPort, opsPort] = [await freePort(), await freePort()];
    const configPath = join(dir, `authz-${i}.yaml`);
    await writeFile(
      configPath,
      toYaml({
        grpc: { address: `127.0.0.1:${grpcPort}`, tls: authzServerTls(internal), drain_delay_ms: 3000, shutdown_grace_ms: 3000 },
        http: { address: `127.0.0.1:${opsPort}` },
        catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
        policy: { engine: 'embedded', decision: 'agent/authz', bundle: { file: bundle } },
        decision_key_file: creds.decisionKeyPath,
      }),
    );
    const proc = startProcess({ name: `authz-${i}`, command: process.execPath, args: [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], logDir });
    replicas.push({ grpcPort, opsPort, proc });
  }
  for (const r of replicas) await waitForHttp(`http://127.0.0.1:${r.opsPort}/readyz`, { process: r.proc, timeoutMs: 60_000 });

  const [http, mtls, admin] = [await freePort(), await freePort(), await freePort()];
  envoyPort = http;
  const envoyConfig = join(dir, 'envoy.yaml');
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
      MAX_REQUEST_BYTES: 2 * 1024 * 1024,
      TLS_CERT_PATH: creds.serverCertPath,
      TLS_KEY_PATH: creds.serverKeyPath,
      CLIENT_CA_PATH: creds.caCertPath,
      JWKS_PATH: creds.jwksPath,
      JWT_ISSUER: creds.jwtIssuer,
      JWT_AUDIENCE: creds.jwtAudience,
      ACCESS_LOG_PATH: join(dir, 'access.log'),
    }),
  );
  envoy = await startEnvoy({ configPath: envoyConfig, logDir, adminPort: admin });
  jwt = await signAgentJwt(creds, { sub: 'ops-bot' });
  await waitForHealthyHosts(admin, REPLICAS);
}, 180_000);

afterAll(async () => {
  await envoy?.stop();
  for (const r of replicas) await r.proc.stop();
  await upstream?.close();
});

async function waitForHealthyHosts(adminPort: number, n: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const text = await fetch(`http://127.0.0.1:${adminPort}/clusters`).then((r) => r.text());
    const healthy = text.split('\n').filter((l) => l.startsWith('toolgate_authz::') && l.includes('::health_flags::healthy')).length;
    if (healthy >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Envoy did not see ${n} healthy authz replicas`);
}

/** Sends checks in small batches until each replica has decided some; fails after 30 s. */
async function untilEveryReplicaDecides(): Promise<void> {
  const start = await Promise.all(replicas.map(allowedBy));
  const end = Date.now() + 30_000;
  let sent = 0;
  while (Date.now() < end) {
    await load(30);
    sent += 30;
    const now = await Promise.all(replicas.map(allowedBy));
    if (now.every((n, i) => n > (start[i] as number))) {
      console.log(`every replica deciding after ${sent} warm-up checks: ${now.map((n, i) => n - (start[i] as number)).join(' / ')}`);
      return;
    }
  }
  throw new Error('Envoy did not route checks to every healthy authz replica within 30 s');
}

interface Answer {
  status: number;
  decisionId: string | undefined;
  /** The trusted headers the upstream received (what a replica decided and attested). */
  forwarded: Record<string, string> | undefined;
}

const BODY = JSON.stringify({ message: 'hi' });

function call(): Promise<Answer> {
  const body = BODY;
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: envoyPort, path: '/v1/tools/echo', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${jwt}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let forwarded: Record<string, string> | undefined;
          try {
            forwarded = (JSON.parse(Buffer.concat(chunks).toString()) as { echo?: { headers?: Record<string, string> } }).echo?.headers;
          } catch {
            forwarded = undefined;
          }
          resolve({ status: res.statusCode ?? 0, decisionId: forwarded?.['x-toolgate-decision-id'], forwarded });
        });
      },
    );
    req.on('error', () => resolve({ status: 0, decisionId: undefined, forwarded: undefined }));
    req.end(body);
  });
}

/** `total` calls, at most CONCURRENCY at once; `at(i)` runs before call i is sent. */
async function load(total: number, at: (i: number) => void = () => undefined): Promise<Answer[]> {
  const results: Answer[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      at(i);
      results[i] = await call();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return results;
}

async function allowedBy(r: Replica): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${r.opsPort}/metrics`).then((res) => res.text());
  const m = /^toolgate_authz_decisions_total\{result="allowed"\} (\d+)/mu.exec(text);
  return Number(m?.[1] ?? 0);
}

/** Decision ids each replica logged as allowed and applied. */
async function appliedAllows(): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const r of replicas) {
    for (const line of (await readFile(r.proc.logPath, 'utf8')).split('\n')) {
      if (!line.includes('"msg":"decision"')) continue;
      const d = JSON.parse(line) as { decision_id: string; allowed: boolean; applied: boolean };
      if (d.allowed && d.applied) ids.add(d.decision_id);
    }
  }
  return ids;
}

describe('three authz replicas behind one Envoy', () => {
  it('spread the checks: each replica decides within ±25% of an even share', async () => {
    // Envoy's admin page can list a replica as healthy a while before its worker's load balancer routes to
    // it (measured: one replica got none of the first 150-350 checks, then its exact third). So warm up until
    // every replica has decided checks, then let the rotation run a while before measuring.
    await untilEveryReplicaDecides();
    await load(150);
    const before = await Promise.all(replicas.map(allowedBy));
    const results = await load(600);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    const after = await Promise.all(replicas.map(allowedBy));
    const shares = after.map((a, i) => a - (before[i] as number));
    const even = 600 / REPLICAS;
    console.log(`checks per replica: ${shares.join(' / ')} (even share ${even})`);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(600);
    for (const s of shares) expect(Math.abs(s - even) / even).toBeLessThanOrEqual(0.25);
  }, 120_000);

  it('a replica stopped under load (SIGTERM) drains: no check fails', async () => {
    const victim = replicas[2] as Replica;
    let stopping: Promise<void> | undefined;
    const results = await load(600, (i) => {
      if (i === 150) stopping = victim.proc.stop();
    });
    await stopping;
    const failed = results.filter((r) => r.status !== 200);
    console.log(`drain: ${results.length - failed.length} answered 200, ${failed.length} failed`);
    expect(failed).toEqual([]);
  }, 120_000);

  it('a replica killed under load (SIGKILL) fails only the checks it had in flight, closed; nothing is allowed without a decision', async () => {
    const victim = replicas[1] as Replica;
    const results = await load(600, (i) => {
      if (i === 150) process.kill(victim.proc.pid, 'SIGKILL');
    });
    const failed = results.filter((r) => r.status !== 200);
    console.log(`kill: ${results.length - failed.length} answered 200, ${failed.length} failed (${[...new Set(failed.map((f) => f.status))].join(',')})`);
    // At most the calls in flight at the kill (the load's concurrency), and those fail closed (503).
    expect(failed.length).toBeLessThanOrEqual(CONCURRENCY);
    for (const f of failed) expect(f.status).toBe(503);
    // Every call that reached the upstream carried a valid attestation of its exact body: a replica decided it.
    const key = await loadAttestationKey(creds.decisionKeyPath);
    const forwarded = results.filter((r) => r.status === 200);
    const attested = (h: Record<string, string> | undefined): boolean =>
      h !== undefined &&
      verifyAttestation(
        key,
        { decisionId: h['x-toolgate-decision-id'] ?? '', agentId: h['x-toolgate-agent-id'] ?? '', agentMethod: h['x-toolgate-agent-auth'] ?? '', tool: h['x-toolgate-tool'] ?? '', policyRevision: h['x-toolgate-policy-revision'] ?? '', body: Buffer.from(BODY) },
        h['x-toolgate-attestation'],
      );
    expect(forwarded.filter((r) => !attested(r.forwarded))).toEqual([]);
    // And each was logged as allowed and applied, but for the few the killed replica answered in its last
    // millisecond (its log line follows the answer and died with it).
    const applied = await appliedAllows();
    expect(forwarded.filter((r) => !applied.has(r.decisionId ?? '')).length).toBeLessThanOrEqual(CONCURRENCY);
  }, 120_000);
});
