import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAuthorizationClient } from '../../src/authz/grpc/proto-loading.js';
import { runSandboxed } from '../../src/executor/runners/sandbox/sandbox-process.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureBubblewrap } from '../../src/toolchain/bubblewrap.js';
import { startStack, type Stack } from './stack.js';

/**
 * Only Envoy obtains a decision: the authz port speaks mutual TLS with a CA of its own and answers only the
 * client holding Envoy's certificate. A local process (or a sandboxed tool with network, sharing the
 * host's loopback) that claims ops-bot's identity gets no decision, so no attestation, so the executor
 * runs nothing for it.
 */
describe('authenticated internal hops', () => {
  let stack: Stack;
  type Client = grpc.Client & { Check: (...a: unknown[]) => unknown };
  // What the attacker sends: ops-bot's SPIFFE ID as the peer, unsigned jwt_payload metadata, a real body.
  const forged = {
    attributes: {
      source: { principal: 'spiffe://toolgate.local/agent/ops-bot' },
      request: { http: { id: 'x', method: 'POST', path: '/v1/tools/echo', host: 'gw', headers: { 'content-type': 'application/json' }, raw_body: Buffer.from('{"message":"pwned"}') } },
      context_extensions: { protocol: 'rest' },
    },
  };

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const ask = (credentials: grpc.ChannelCredentials): Promise<{ code: number; attested: boolean }> => {
    const Ctor = loadAuthorizationClient();
    const client = new Ctor(`127.0.0.1:${stack.authzGrpcPort}`, credentials, { 'grpc.ssl_target_name_override': 'authz.toolgate.internal' }) as unknown as Client;
    return new Promise((resolve) =>
      client.Check(forged, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: { ok_response?: { headers?: { header?: { key?: string } }[] } }) => {
        client.close();
        resolve({ code: err ? err.code : 0, attested: (res?.ok_response?.headers ?? []).some((h) => h.header?.key === 'x-toolgate-attestation') });
      }),
    );
  };

  it('a local process gets no decision: plaintext, TLS without a certificate, or with an agent\'s certificate', async () => {
    expect((await ask(grpc.credentials.createInsecure())).code).toBe(grpc.status.UNAVAILABLE);
    const ca = await readFile(stack.internal.caCertPath);
    expect((await ask(grpc.credentials.createSsl(ca))).code).toBe(grpc.status.UNAVAILABLE);
    const agent = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
    const agentCreds = grpc.credentials.createSsl(ca, await readFile(agent.keyPath), await readFile(agent.certPath));
    expect((await ask(agentCreds)).code).toBe(grpc.status.UNAVAILABLE);
    // The control: with Envoy's certificate the same request is decided (and attested) - the test can fail.
    const envoyCreds = grpc.credentials.createSsl(ca, await readFile(stack.internal.envoyKeyPath), await readFile(stack.internal.envoyCertPath));
    expect(await ask(envoyCreds)).toEqual({ code: 0, attested: true });
  });

  it('a local process cannot get a call executed without Envoy: the executor refuses headers without an attestation', async () => {
    const res = await fetch(`http://127.0.0.1:${stack.executorPort}/v1/tools/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-toolgate-agent-id': 'ops-bot', 'x-toolgate-agent-auth': 'jwt', 'x-toolgate-decision-id': 'd-1', 'x-toolgate-tool': 'echo', 'x-toolgate-policy-revision': 'r' },
      body: '{"message":"pwned"}',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('a sandboxed tool with network reaches the authz port but gets no decision, and cannot read Envoy\'s key', async () => {
    const script = `
      const http2 = require('node:http2'); const fs = require('node:fs');
      let keyReadable = true; try { fs.readFileSync(${JSON.stringify(stack.internal.envoyKeyPath)}); } catch { keyReadable = false; }
      const out = { keyReadable, answered: false, error: '' };
      const s = http2.connect('https://127.0.0.1:${stack.authzGrpcPort}', { rejectUnauthorized: false, ALPNProtocols: ['h2'] });
      s.on('error', (e) => { out.error = e.code || e.message; });
      const req = s.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('response', () => { out.answered = true; });
      req.on('error', (e) => { out.error = out.error || e.code || e.message; });
      req.on('close', () => { console.log(JSON.stringify(out)); s.destroy(); });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 4000).unref();
    `;
    const r = await runSandboxed({
      name: `hop-probe-${process.pid}`,
      argv: [process.execPath, '-e', script],
      env: {},
      network: true,
      readOnlyPaths: [dirname(process.execPath), join(REPO_ROOT, 'dist')],
      timeoutMs: 15_000,
      maxOutputBytes: 64 * 1024,
      limits: { memoryBytes: 256 * 1024 * 1024, cpuMillis: 1000, pids: 32 },
      bwrapPath: await ensureBubblewrap(),
    });
    const seen = JSON.parse(r.stdout.trim().split('\n')[0] as string) as { keyReadable: boolean; answered: boolean; error: string };
    expect(seen.keyReadable).toBe(false);
    expect(seen.answered).toBe(false);
    expect(seen.error).not.toBe('');
  });
});
