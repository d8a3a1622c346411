import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attest, loadAttestationKey } from '../../src/shared/decision-attestation.js';
import { startStack, type Stack } from './stack.js';

/**
 * The executor runs only what the authz server attested. Anything that reaches its port without going
 * through Envoy (a tool with network access, another pod) can set the x-toolgate-* headers, but not make
 * the attestation, nor reuse one for other arguments.
 */
describe('decision attestation', () => {
  let stack: Stack;
  let jwt: string;
  let key: Buffer;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local' });
    jwt = await stack.jwtFor('ops-bot');
    key = await loadAttestationKey(stack.creds.decisionKeyPath);
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const decision = { decisionId: 'forged-decision', agentId: 'ops-bot', agentMethod: 'jwt', tool: 'echo', policyRevision: 'r' };
  const straight = (body: string, attestation: string | undefined): Promise<Response> =>
    fetch(`http://127.0.0.1:${stack.executorPort}/v1/tools/echo`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-toolgate-decision-id': decision.decisionId,
        'x-toolgate-agent-id': decision.agentId,
        'x-toolgate-agent-auth': decision.agentMethod,
        'x-toolgate-tool': decision.tool,
        'x-toolgate-policy-revision': decision.policyRevision,
        ...(attestation ? { 'x-toolgate-attestation': attestation } : {}),
      },
      body,
    });

  it('a call through Envoy carries an attestation and runs', async () => {
    const res = await stack.call('/v1/tools/echo', { message: 'attested' }, { jwt });
    expect(res.status).toBe(200);
  });

  it('refuses the trusted headers without an attestation, or with a made-up one', async () => {
    const body = JSON.stringify({ message: 'no decision' });
    for (const attestation of [undefined, 'v1.AAAA', attest(Buffer.alloc(32, 1), { ...decision, body: Buffer.from(body) })]) {
      const res = await straight(body, attestation);
      expect(res.status, String(attestation)).toBe(403);
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'not_authorized', message: expect.stringMatching(/attestation/) });
    }
  });

  it('refuses an attestation made for other arguments', async () => {
    const attested = JSON.stringify({ message: 'harmless' });
    const res = await straight(JSON.stringify({ message: 'something else' }), attest(key, { ...decision, body: Buffer.from(attested) }));
    expect(res.status).toBe(403);
    // The same attestation with the body it was made for runs: the test's key is the real one.
    expect((await straight(attested, attest(key, { ...decision, body: Buffer.from(attested) }))).status).toBe(200);
  });
});
