import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExecutor, type RunningExecutor } from '../../../src/executor/app.js';
import { parseExecutorConfig } from '../../../src/executor/config.js';
import type { Runner, ToolInvocation, ToolOutcome } from '../../../src/executor/runners/runner.js';
import { RedisHistoryStore } from '../../../src/authz/history/redis-history-store.js';
import { attest } from '../../../src/shared/decision-attestation.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';
import { closeStore, connectStore, type RedisConnection } from '../../../src/shared/store/redis-connection.js';
import { resolveStoreConfig } from '../../../src/shared/store/store-config.js';
import { TRUSTED_HEADERS } from '../../../src/shared/trusted-headers.js';
import { startRedis, type TestRedis } from '../../support/redis.js';
import { waitUntil } from '../../support/wait-until.js';

/** Test double for a runner (the real ones need bubblewrap or a cluster): echo answers after a short wait. */
class EchoRunner implements Runner {
  readonly kind = 'local' as const;
  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    await new Promise((r) => setTimeout(r, 50));
    return { status: 'succeeded', result: { message: inv.arguments.message, length: String(inv.arguments.message).length }, durationMs: 50 };
  }
  async close(): Promise<void> {}
}

const KEY = Buffer.from('k'.repeat(48));
const quiet = createLogger('test', () => undefined);

describe('input.history: the executor ends calls in flight in the shared store', () => {
  let redis: TestRedis;
  let client: RedisConnection;
  let executor: RunningExecutor;
  let history: RedisHistoryStore;

  beforeAll(async () => {
    redis = await startRedis();
    client = (await connectStore(resolveStoreConfig({ redis_url: redis.url }), quiet)) as RedisConnection;
    history = new RedisHistoryStore(client, { keyPrefix: 'x:', describe: redis.url });
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-inflight-'));
    await writeFile(join(dir, 'decision.key'), KEY);
    const config = parseExecutorConfig(
      JSON.stringify({ http: { address: '127.0.0.1:0' }, ops: { address: '127.0.0.1:0' }, catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), decision_key_file: 'decision.key', store: { redis_url: redis.url, key_prefix: 'x:' } }),
      join(dir, 'executor.yaml'),
    );
    executor = await startExecutor(config, { runner: new EchoRunner(), log: quiet });
  }, 60_000);
  afterAll(async () => {
    await executor?.stop();
    await closeStore(client);
    await redis?.stop();
  });

  it('an allowed call counts in flight from the decision until the executor has run it', async () => {
    const agentId = `agent-${randomUUID()}`;
    const subject = { agentId, tool: 'echo', argumentsDigest: 'sha256:x' };
    const decisionId = randomUUID();
    // What the authz server does for an allowed check.
    await history.observe(subject, decisionId, 1000);
    await history.settle(subject, decisionId, { allowed: true, cost: 0, inFlightMs: 60_000 });
    expect((await history.observe(subject, randomUUID(), 1000)).agent.in_flight).toBe(1);

    const body = Buffer.from(JSON.stringify({ message: 'hi' }));
    const res = await fetch(`http://127.0.0.1:${executor.port}/v1/tools/echo`, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        [TRUSTED_HEADERS.decisionId]: decisionId,
        [TRUSTED_HEADERS.agentId]: agentId,
        [TRUSTED_HEADERS.agentMethod]: 'jwt',
        [TRUSTED_HEADERS.policyRevision]: 'test-rev',
        [TRUSTED_HEADERS.tool]: 'echo',
        [TRUSTED_HEADERS.attestation]: attest(KEY, { decisionId, agentId, agentMethod: 'jwt', tool: 'echo', policyRevision: 'test-rev', body }),
      },
    });
    expect(res.status, await res.text()).toBe(200);
    await waitUntil('the call is no longer in flight', async () => (await history.observe(subject, randomUUID(), 1000)).agent.in_flight === 0, 5000, 50);
  });
});
