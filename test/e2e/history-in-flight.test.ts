import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../support/redis.js';
import { waitUntil } from '../support/wait-until.js';
import { policiesWith } from './policy-bundles.js';
import { buildSeedBundle, startStack, type Stack } from './stack.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * input.history's calls in flight through the whole path: Envoy, the authz server and the real executor with
 * the local sandbox runner, sharing a real Redis. A policy allows one call in flight per agent: while a
 * sleep runs, another call is refused; once the executor has answered it, the next call is allowed (the
 * executor removed it from the store, long before its deadline).
 */
const ONE_AT_A_TIME = `package agent.authz

import rego.v1

deny if input.history.agent.in_flight >= 1

reasons contains msg if {
	input.history.agent.in_flight >= 1
	msg := sprintf("%d call(s) of yours are still running; wait for them to finish", [input.history.agent.in_flight])
}
`;

let redis: TestRedis;
let stack: Stack;
let jwt: string;

beforeAll(async () => {
  redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-inflight-e2e-'));
  const bundle = await buildSeedBundle(dir, 'one-at-a-time', await policiesWith(dir, 'one', { 'agent/authz/one_at_a_time.rego': ONE_AT_A_TIME }));
  stack = await startStack({ engine: 'embedded', executor: 'local', bundle: { file: bundle }, redisUrl: redis.url });
  jwt = await stack.jwtFor('ops-bot');
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await redis?.stop();
});

describe('calls in flight, ended by the executor', () => {
  it('a running call counts in flight; once answered it no longer does', async () => {
    const running = stack.call('/v1/tools/sleep', { seconds: 2 }, { jwt });
    // The sleep has been allowed (it is in flight) once a second call is refused for it.
    let refused: Awaited<ReturnType<Stack['call']>> | undefined;
    await waitUntil('a second call is refused while the sleep runs', async () => {
      const r = await stack.call('/v1/tools/echo', { message: `probe ${Date.now()}` }, { jwt });
      if (r.status === 403) refused = r;
      return r.status === 403;
    }, 10_000, 100);
    expect(refused?.json.error.reasons).toContain('1 call(s) of yours are still running; wait for them to finish');
    const slept = await running;
    expect(slept.status, slept.text).toBe(200);
    // The executor ended it in the store: allowed again at once (its deadline is 65 + 30 s away).
    await waitUntil('a call is allowed after the sleep answered', async () => (await stack.call('/v1/tools/echo', { message: `after ${Date.now()}` }, { jwt })).status === 200, 3000, 100);
  }, 60_000);
});
