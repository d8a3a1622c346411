import { copyFile, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { attest, loadAttestationKey } from '../../src/shared/decision-attestation.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { isAlive, sandboxesOf } from '../support/sandbox-processes.js';
import { metricValue, policiesWith, waitFor } from './policy-bundles.js';
import { buildSeedBundle, startStack, type Stack } from './stack.js';

/**
 * Obligations end to end through the real Envoy, authz server and executor with the local sandbox runner: the
 * policy's limits are what the running tool meets (a shorter deadline, less memory, no network), asserted
 * from the tool itself; a policy obliging what toolgate cannot apply is refused per call and, when its own
 * examples show it, at load; the obligations travel only attested (a client cannot send them, a tampered
 * header is refused by the executor).
 */
const AGENTS = ['ops-bot', 'limited-bot', 'hasty-bot', 'sandboxed-bot', 'widening-bot', 'odd-bot'];

/** The policy of this suite: policies/ (with its example network-none obligation for data.untrusted_agents), plus: */
const E2E_RULES = `package agent.authz

import rego.v1

e2e_tools := {"sandbox_limits", "allocate_memory"}

allow if {
	input.tool_call.tool in e2e_tools
	input.agent_id in data.authorized_agents
}

# hasty-bot: a 2 s deadline (the sandbox's start counts: a loaded machine may need seconds, so only here).
obligations["timeout_seconds"] := 2 if input.agent_id == "hasty-bot"

# limited-bot: less memory and CPU, no network.
obligations["memory"] := "64Mi" if input.agent_id == "limited-bot"
obligations["cpu"] := "250m" if input.agent_id == "limited-bot"
obligations["network"] := "none" if input.agent_id == "limited-bot"

# widening-bot: more memory than the catalog grants.
obligations["memory"] := "1Gi" if input.agent_id == "widening-bot"

# odd-bot: a limit toolgate does not know.
obligations["swap"] := "0" if input.agent_id == "odd-bot"
`;

/** The same, with a timeout longer than the sleep tool's (65 s), shown by an example the bundle ships. */
const WIDENING_AT_LOAD = `package agent.authz

import rego.v1

obligations["timeout_seconds"] := 600 if input.agent_id == "hasty-bot"
`;

describe('obligations through Envoy with the local sandbox runner', () => {
  let stack: Stack;
  let work: string;
  let bundlePath: string;
  let listener: Server;
  let listenerPort: number;
  let connections = 0;
  const jwts: Record<string, string> = {};

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-obligations-'));
    // The default catalog plus two diagnostic tools that have network (any) and 256Mi.
    const doc = parseYaml(await readFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), 'utf8')) as { tools: Record<string, unknown>[] };
    const resources = { cpu: '500m', memory: '256Mi' };
    doc.tools.push(
      { name: 'sandbox_limits', description: 'limits seen from inside', action: 'invoke', resource: 'sandbox_limits', input_schema: { type: 'object', additionalProperties: false, properties: { connect_port: { type: 'integer', minimum: 1, maximum: 65535 } } }, execution: { timeout_seconds: 30, network: 'any', resources } },
      { name: 'allocate_memory', description: 'allocates memory', action: 'invoke', resource: 'allocate_memory', input_schema: { type: 'object', additionalProperties: false, properties: { mebibytes: { type: 'integer' }, hold_seconds: { type: 'number' } } }, execution: { timeout_seconds: 30, network: 'none', resources } },
    );
    const catalogPath = join(work, 'catalog.yaml');
    await writeFile(catalogPath, toYaml(doc));
    const policies = await policiesWith(work, 'policies-obligations', {
      'data.json': JSON.stringify({ authorized_agents: AGENTS, untrusted_agents: ['sandboxed-bot'] }),
      'agent/authz/e2e_obligations.rego': E2E_RULES,
    });
    bundlePath = join(work, 'active-bundle.tar.gz');
    await copyFile(await buildSeedBundle(work, 'rev-obligations', policies), bundlePath);
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    listenerPort = (listener.address() as { port: number }).port;
    // A pool of one sandbox for sandbox_limits, started with the catalog's settings (network any).
    stack = await startStack({ engine: 'embedded', executor: 'local', catalogPath, bundle: { file: bundlePath }, sandboxPool: { size: 0, tools: { sandbox_limits: 1 } }, maxInFlight: 8, maxInFlightPerAgent: 8 });
    for (const a of AGENTS) jwts[a] = await stack.jwtFor(a);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await new Promise((r) => listener?.close(r));
  });

  const call = (agent: string, tool: string, args: unknown, headers: Record<string, string> = {}) => stack.call(`/v1/tools/${tool}`, args, { jwt: jwts[agent] as string, headers });
  const executorCalls = async (): Promise<string> => (await (await fetch(`http://127.0.0.1:${stack.executorOpsPort}/metrics`)).text()).split('\n').filter((l) => l.startsWith('toolgate_executor_calls_total')).join('\n');

  it('network: none for the untrusted agent (the example policy): the tool has only a loopback of its own and cannot reach the host', async () => {
    const before = connections;
    const trusted = await call('ops-bot', 'sandbox_limits', { connect_port: listenerPort });
    expect(trusted.status).toBe(200);
    expect(trusted.json.result.connect).toBe('connected');
    expect(trusted.json.result.network_interfaces.length).toBeGreaterThan(1);
    expect(connections).toBe(before + 1);

    const untrusted = await call('sandboxed-bot', 'sandbox_limits', { connect_port: listenerPort });
    expect(untrusted.status).toBe(200);
    expect(untrusted.json.result.connect).not.toBe('connected');
    expect(untrusted.json.result.network_interfaces).toEqual(['lo']);
    expect(connections).toBe(before + 1);
    // The decision log says what was obliged.
    const decided = async (): Promise<Record<string, unknown>[]> => (await readFile(stack.authz.logPath, 'utf8')).split('\n').filter((l) => l.includes('"msg":"decision"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(async () => (await decided()).some((l) => l.agent_id === 'sandboxed-bot'), 5000, 'decision logged');
    expect((await decided()).find((l) => l.agent_id === 'sandboxed-bot')).toMatchObject({ result: 'allowed', tool: 'sandbox_limits', obligations: { network: 'none' } });
    expect((await decided()).find((l) => l.agent_id === 'ops-bot')?.obligations).toBeUndefined();
  });

  it('an obligated call runs in a cold sandbox and leaves the pooled one (started with the catalog\'s network) waiting', async () => {
    const executorPid = stack.executor?.pid as number;
    let pooled: number[] = [];
    await waitFor(async () => (pooled = sandboxesOf(executorPid, 'sandbox_limits')).length === 1, 30_000, 'one pooled sandbox_limits sandbox');
    const res = await call('sandboxed-bot', 'sandbox_limits', { connect_port: listenerPort });
    expect(res.status).toBe(200);
    expect(res.json.result.network_interfaces).toEqual(['lo']);
    // The pooled sandbox is the same process, still waiting for a call the catalog's settings fit.
    expect(isAlive(pooled[0] as number)).toBe(true);
    expect(sandboxesOf(executorPid, 'sandbox_limits')).toContain(pooled[0]);
    const plain = await call('ops-bot', 'sandbox_limits', { connect_port: listenerPort });
    expect(plain.json.result.connect).toBe('connected');
  });

  it('timeout_seconds: the obliged deadline ends the call, where the catalog\'s would not', async () => {
    const t0 = Date.now();
    const limited = await call('hasty-bot', 'sleep', { seconds: 6 });
    const took = Date.now() - t0;
    expect(limited.status).toBe(504);
    expect(limited.json.error.code).toBe('tool_timeout');
    expect(took).toBeLessThan(5500);
    const plain = await call('ops-bot', 'sleep', { seconds: 3 });
    expect(plain.status).toBe(200);
    expect(plain.json.result).toEqual({ slept: 3 });
  });

  it('memory: the obliged limit is what the tool meets (64Mi), where the catalog\'s 256Mi would let it allocate', async () => {
    const plain = await call('ops-bot', 'allocate_memory', { mebibytes: 128 });
    expect(plain.status).toBe(200);
    expect(plain.json.result).toEqual({ allocated_mebibytes: 128 });
    const limited = await call('limited-bot', 'allocate_memory', { mebibytes: 128 });
    expect(limited.status).toBe(502);
    expect(limited.json.error.message).toMatch(/memory limit of 64Mi exceeded/);
    // From inside: V8's heap is sized from the memory limit the sandbox got.
    const heap = async (agent: string): Promise<number> => (await call(agent, 'sandbox_limits', {})).json.result.heap_limit_mebibytes as number;
    const [limitedHeap, plainHeap] = [await heap('limited-bot'), await heap('ops-bot')];
    // (--max-old-space-size is 3/4 of the limit; V8 adds its young generation: 96 and 240 MiB measured.)
    expect(limitedHeap).toBeLessThan(110);
    expect(plainHeap - limitedHeap).toBeGreaterThan(100);
  });

  it('memory and cpu: the running sandbox\'s cgroup has the obliged limits (64Mi, 250m), the catalog\'s otherwise', async () => {
    const executorPid = stack.executor?.pid as number;
    const limitsWhileSleeping = async (agent: string): Promise<{ memoryBytes: number; cpuQuotaUs: number }> => {
      // Sandboxes of earlier calls may still be exiting: this call's is the one that was not there before.
      const earlier = new Set(sandboxesOf(executorPid, 'sleep'));
      const pending = call(agent, 'sleep', { seconds: 3 });
      let pid: number | undefined;
      await waitFor(async () => (pid = sandboxesOf(executorPid, 'sleep').find((p) => !earlier.has(p))) !== undefined, 10_000, 'the sleep sandbox');
      const limits = await cgroupLimits(pid as number);
      expect((await pending).status).toBe(200);
      return limits;
    };
    expect(await limitsWhileSleeping('limited-bot')).toEqual({ memoryBytes: 64 * 1024 * 1024, cpuQuotaUs: 25_000 });
    expect(await limitsWhileSleeping('ops-bot')).toEqual({ memoryBytes: 256 * 1024 * 1024, cpuQuotaUs: 50_000 });
  });

  it('a policy obliging what would widen the catalog, or an unknown limit, gets no allow: invalid_obligations, logged, nothing runs', async () => {
    const before = await executorCalls();
    const widening = await call('widening-bot', 'sandbox_limits', {});
    expect(widening.status).toBe(500);
    expect(widening.json.error).toMatchObject({ code: 'invalid_obligations', policy_revision: 'rev-obligations' });
    expect(widening.json.error.message).toMatch(/obligations.memory "1Gi" is more than tool "sandbox_limits"'s memory limit of 256Mi: obligations may only tighten/);
    const odd = await call('odd-bot', 'echo', { message: 'x' });
    expect(odd.status).toBe(500);
    expect(odd.json.error.message).toMatch(/unknown key "swap"/);
    expect(await executorCalls()).toBe(before);
    const id = widening.headers['x-toolgate-decision-id'] as string;
    await waitFor(async () => (await readFile(stack.authz.logPath, 'utf8')).includes(id), 5000, 'decision logged');
    const lines = (await readFile(stack.authz.logPath, 'utf8')).split('\n').filter((l) => l.includes(id)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'policy obligations refused: the call is denied', decision_id: id, policy_revision: 'rev-obligations', tool: 'sandbox_limits' }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'decision', decision_id: id, result: 'error', code: 'invalid_obligations' }));
  });

  it('MCP tools/call honours them too (the SDK client through Envoy)', async () => {
    const url = new URL(`http://127.0.0.1:${stack.envoyHttpPort}/mcp`);
    const connect = async (agent: string): Promise<Client> => {
      const jwt = await stack.jwtFor(agent, { aud: url.href });
      const client = new Client({ name: 'toolgate-e2e-obligations', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
      return client;
    };
    const untrusted = await connect('sandboxed-bot');
    const trusted = await connect('ops-bot');
    try {
      const u = await untrusted.callTool({ name: 'sandbox_limits', arguments: { connect_port: listenerPort } });
      expect(u.isError).toBeFalsy();
      expect(u.structuredContent).toMatchObject({ network_interfaces: ['lo'] });
      expect((u.structuredContent as { connect: string }).connect).not.toBe('connected');
      const t = await trusted.callTool({ name: 'sandbox_limits', arguments: { connect_port: listenerPort } });
      expect((t.structuredContent as { connect: string }).connect).toBe('connected');
    } finally {
      await untrusted.close();
      await trusted.close();
    }
  });

  it('obligations travel only attested: a client-sent header is stripped by Envoy, a tampered one refused by the executor', async () => {
    // Through Envoy: the client's x-toolgate-obligations never reaches the executor (else its MAC would not match: 403).
    const viaEnvoy = await call('ops-bot', 'sandbox_limits', { connect_port: listenerPort }, { 'x-toolgate-obligations': '{"network":"none"}' });
    expect(viaEnvoy.status).toBe(200);
    expect(viaEnvoy.json.result.connect).toBe('connected');

    // Straight to the executor, with what the authz server would send for sandboxed-bot, then changed.
    const key = await loadAttestationKey(stack.creds.decisionKeyPath);
    const body = JSON.stringify({ connect_port: listenerPort });
    const direct = (obligations: string | undefined, sent: string | undefined): Promise<Response> => {
      const decisionId = `test-decision-${crypto.randomUUID()}`;
      const attestation = attest(key, { decisionId, agentId: 'sandboxed-bot', agentMethod: 'jwt', tool: 'sandbox_limits', policyRevision: 'rev-obligations', body: Buffer.from(body), ...(obligations ? { obligations } : {}) });
      return fetch(`http://127.0.0.1:${stack.executorPort}/v1/tools/sandbox_limits`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-toolgate-decision-id': decisionId,
          'x-toolgate-agent-id': 'sandboxed-bot',
          'x-toolgate-agent-auth': 'jwt',
          'x-toolgate-tool': 'sandbox_limits',
          'x-toolgate-policy-revision': 'rev-obligations',
          'x-toolgate-attestation': attestation,
          ...(sent !== undefined ? { 'x-toolgate-obligations': sent } : {}),
        },
        body,
      });
    };
    const before = connections;
    const honest = await direct('{"network":"none"}', '{"network":"none"}');
    expect(honest.status).toBe(200);
    expect(((await honest.json()) as { result: { network_interfaces: string[] } }).result.network_interfaces).toEqual(['lo']);
    for (const [attested, sent] of [['{"network":"none"}', undefined], ['{"network":"none"}', '{}'], ['{"network":"none"}', '{"timeout_seconds":30}'], [undefined, '{"network":"none"}']] as const) {
      const res = await direct(attested, sent);
      expect(res.status, `${attested} -> ${sent}`).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_authorized');
    }
    expect(connections).toBe(before);
  });

  it('a bundle whose own examples show it widening the catalog is refused at load; the last good one keeps deciding', async () => {
    const metric = 'toolgate_policy_bundle_rejections_total{reason="evaluation"}';
    const rejected = await metricValue(stack.authzHttpPort, metric);
    const examples = [{ name: 'hasty-bot sleeps', input: { agent_id: 'hasty-bot', action: 'invoke', resource: 'sleep', namespace: 'default', tool_call: { protocol: 'rest', tool: 'sleep', arguments: { seconds: 1 } } }, allowed: true }];
    const widening = await policiesWith(work, 'policies-widening', {
      'data.json': JSON.stringify({ authorized_agents: AGENTS, untrusted_agents: ['sandboxed-bot'] }),
      'agent/authz/widening.rego': WIDENING_AT_LOAD,
      'toolgate/examples/data.json': JSON.stringify(examples),
    });
    const candidate = await buildSeedBundle(work, 'rev-widening', widening);
    await copyFile(candidate, `${bundlePath}.tmp`);
    await rename(`${bundlePath}.tmp`, bundlePath);
    await waitFor(async () => (await metricValue(stack.authzHttpPort, metric)) > rejected, 20_000, 'evaluation rejection counted');
    const ready = (await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/readyz`)).json()) as { status: { bundle: { revision: string; lastError?: string } } };
    expect(ready.status.bundle.revision).toBe('rev-obligations');
    expect(ready.status.bundle.lastError).toMatch(/rev-widening fails on hasty-bot sleeps: .*obligations.timeout_seconds 600 is longer than tool "sleep"'s timeout of 65 s/);
    const authzLog = await readFile(stack.authz.logPath, 'utf8');
    expect(authzLog).toMatch(/policy bundle refused; keeping the active one.*rev-widening/);
    // Still the good bundle: hasty-bot's obligation is the 2 s one.
    const res = await call('hasty-bot', 'sleep', { seconds: 4 });
    expect(res.status).toBe(504);
  });
});

/** The memory limit and CPU quota (per 100 ms period) of the cgroup a process is in, as the kernel enforces them (v1 or v2). */
async function cgroupLimits(pid: number): Promise<{ memoryBytes: number; cpuQuotaUs: number }> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).trim().split('\n').map((l) => l.split(':'));
  const v1 = (controller: string): string | undefined => lines.find((l) => (l[1] ?? '').split(',').includes(controller))?.[2];
  const memoryPath = v1('memory');
  if (memoryPath && memoryPath !== '/') {
    const memoryBytes = Number(await readFile(`/sys/fs/cgroup/memory${memoryPath}/memory.limit_in_bytes`, 'utf8'));
    const cpuQuotaUs = Number(await readFile(`/sys/fs/cgroup/cpu${v1('cpu')}/cpu.cfs_quota_us`, 'utf8'));
    return { memoryBytes, cpuQuotaUs };
  }
  const unified = lines.find((l) => l[0] === '0')?.[2] ?? '/';
  const memoryBytes = Number(await readFile(`/sys/fs/cgroup${unified}/memory.max`, 'utf8'));
  const cpuQuotaUs = Number((await readFile(`/sys/fs/cgroup${unified}/cpu.max`, 'utf8')).split(' ')[0]);
  return { memoryBytes, cpuQuotaUs };
}
