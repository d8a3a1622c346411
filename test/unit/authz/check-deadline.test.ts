import * as grpc from '@grpc/grpc-js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthz, type RunningAuthz } from '../../../src/authz/app.js';
import type { AuthzConfig } from '../../../src/authz/config.js';
import { loadAuthorizationClient } from '../../../src/authz/grpc/proto-loading.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

// The whole authz server with the remote engine, in front of a test double of OPA whose decisions take
// 400 ms (a slow policy): a caller with a 50 ms deadline gets DEADLINE_EXCEEDED, OPA's request is aborted
// at the deadline (the engine's timeout derives from it), and the decision log says nothing was applied.
const SLOW_POLICY_MS = 400;
const lines: string[] = [];
let authz: RunningAuthz;
let slowOpaDouble: Server;
const opaRequests: { aborted: boolean; answered: boolean }[] = [];

beforeAll(async () => {
  slowOpaDouble = createServer((req, res) => {
    if (req.url?.startsWith('/health')) {
      res.end('{}');
      return;
    }
    const seen = { aborted: false, answered: false };
    opaRequests.push(seen);
    req.resume();
    res.on('close', () => {
      if (!res.writableFinished) seen.aborted = true;
    });
    setTimeout(() => {
      if (res.destroyed) return;
      seen.answered = true;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result: { allow: true, deny: [] }, provenance: { bundles: { toolgate: { revision: 'slow-1' } } } }));
    }, SLOW_POLICY_MS);
  });
  await new Promise<void>((r) => slowOpaDouble.listen(0, '127.0.0.1', r));
  const opaPort = (slowOpaDouble.address() as AddressInfo).port;
  const config: AuthzConfig = {
    grpc: { address: '127.0.0.1:0', drain_delay_ms: 0, shutdown_grace_ms: 1000, max_concurrent_streams: 100, keepalive: { interval_ms: 30_000, timeout_ms: 10_000 } },
    http: { address: '127.0.0.1:0' },
    catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
    // The configured timeout (2 s) is longer than any caller waits here: the deadline must win.
    policy: { engine: 'remote', decision: 'agent/authz', strict_builtin_errors: false, remote: { url: `http://127.0.0.1:${opaPort}`, timeout_ms: 2000 } },
    identity: { jwt_metadata_namespace: 'envoy.filters.http.jwt_authn', jwt_payload_keys: ['jwt_payload'], agent_id_claim: 'sub' },
  };
  authz = await startAuthz(config, createLogger('authz', (l) => lines.push(l)));
});

afterAll(async () => {
  await authz?.stop();
  await new Promise((r) => slowOpaDouble?.close(r));
});

const request = {
  attributes: {
    source: { principal: 'spiffe://toolgate.dev/agents/ops-bot' },
    request: { http: { id: 'r-1', method: 'POST', path: '/v1/tools/echo', host: 'x', headers: { 'content-type': 'application/json' }, raw_body: Buffer.from('{"message":"hi"}') } },
    context_extensions: { protocol: 'rest' },
  },
};

function decisions(): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'decision');
}

describe('a Check with a deadline shorter than the policy takes', () => {
  it('gets DEADLINE_EXCEEDED; OPA is not waited for past the deadline; no decision is logged as applied', async () => {
    const Ctor = loadAuthorizationClient();
    const client = new Ctor(`127.0.0.1:${authz.grpcPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: (...a: unknown[]) => unknown };
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
    const started = Date.now();
    const err = await new Promise<grpc.ServiceError | null>((resolve) => client.Check(request, new grpc.Metadata(), { deadline: Date.now() + 50 }, (e: grpc.ServiceError | null) => resolve(e)));
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(SLOW_POLICY_MS);

    const end = Date.now() + 5000;
    while (decisions().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const [d] = decisions();
    expect(d).toMatchObject({ applied: false, allowed: false, result: 'abandoned' });
    expect(['deadline_exceeded', 'cancelled']).toContain(d?.code);
    expect(decisions().some((x) => x.applied === true)).toBe(false);
    // The engine's request to OPA was given up with the call, not left to run for its 2 s timeout (on a
    // loaded machine the deadline may pass before OPA is asked at all: then it is not asked).
    expect(opaRequests.length).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, SLOW_POLICY_MS));
    for (const r of opaRequests) expect(r).toEqual({ aborted: true, answered: false });
    client.close();
  });

  it('is decided and applied as usual with time to spare', async () => {
    const Ctor = loadAuthorizationClient();
    const client = new Ctor(`127.0.0.1:${authz.grpcPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: (...a: unknown[]) => unknown };
    const res = await new Promise<{ status: { code: number } }>((resolve, reject) =>
      client.Check(request, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (e: grpc.ServiceError | null, r: { status: { code: number } }) => (e ? reject(e) : resolve(r))),
    );
    expect(res.status.code).toBe(0);
    const end = Date.now() + 5000;
    while (!decisions().some((x) => x.applied === true) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(decisions().find((x) => x.applied === true)).toMatchObject({ allowed: true, result: 'allowed', policy_revision: 'slow-1' });
    client.close();
  });
});
