import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { loadAttestationKey, verifyAttestation } from '../../src/shared/decision-attestation.js';
import { signAgentJwt } from '../../src/gateway/dev-credentials.js';
import { startControlPlane, type ControlPlane } from '../support/kube/control-plane.js';
import { startCollector, type Collector } from '../support/otel-collector.js';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { freePort } from '../support/managed-process.js';
import { runPythonMcpClient } from '../support/mcp-python.js';
import { startGarbageUpstream, startHangingUpstream, startKubernetesMcpServer, startRecordingUpstream, startServerEverything } from '../support/mcp-upstreams.js';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';
import { jsonRpcError } from '../support/mcp-errors.js';

/**
 * MCP through the gateway: real MCP clients (the official TypeScript SDK, the Python SDK from PyPI) reach
 * real MCP servers (server-everything, kubernetes-mcp-server against the suite's kube-apiserver) through the
 * real Envoy, every message decided by the seed Rego (plus one e2e rule: viewer-bot never writes).
 */
describe('MCP through the gateway', () => {
  let plane: ControlPlane;
  let collector: Collector;
  let stack: Stack;
  let dir: string;
  const closers: (() => Promise<void>)[] = [];
  let resource: string;
  let recorder: Awaited<ReturnType<typeof startRecordingUpstream>>;
  const token = (sub: string, audience = resource): Promise<string> => signAgentJwt(stack.creds, { sub }, { audience });
  const url = (server?: string): URL => new URL(`http://127.0.0.1:${stack.envoyHttpPort}/mcp${server ? `/${server}` : ''}`);

  async function connect(server: string, sub: string): Promise<Client> {
    const client = new Client({ name: 'toolgate-e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(url(server), { requestInit: { headers: { authorization: `Bearer ${await token(sub)}` } } });
    await client.connect(transport);
    closers.push(() => client.close());
    return client;
  }

  const refusal = jsonRpcError;

  /** Checks Envoy's ext_authz filter has made (its counters on the admin port). */
  const authzChecks = async (): Promise<number> => {
    const stats = await (await fetch(`http://127.0.0.1:${stack.envoyAdminPort}/stats?filter=^http\\.agents\\.ext_authz\\.toolgate\\.(ok|denied|error)$`)).text();
    return [...stats.matchAll(/: (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };

  const rpc = (server: string, body: unknown, jwt: string | undefined, headers: Record<string, string> = {}) =>
    stack.call(`/mcp/${server}`, body, { ...(jwt ? { jwt } : {}), headers: { accept: 'application/json, text/event-stream', ...headers } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-mcp-e2e-'));
    [plane, collector] = await Promise.all([startControlPlane(), startCollector()]);
    const admin = plane.admin();
    const core = admin.makeApiClient(CoreV1Api);
    const apps = admin.makeApiClient(AppsV1Api);
    for (const ns of ['staging', 'production']) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      // The namespace's default service account comes from the controller manager, a moment later.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: `web-${ns}` }, spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } } });
          break;
        } catch (err) {
          if (Date.now() > deadline || !String(err).includes('serviceaccount')) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    await apps.createNamespacedDeployment({
      namespace: 'production',
      body: {
        metadata: { name: 'api' },
        spec: { replicas: 2, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.invalid/api:1' }] } } },
      },
    });

    const [everything, kube, hang, garbage] = await Promise.all([startServerEverything(dir), startKubernetesMcpServer(plane.adminKubeconfigPath, dir), startHangingUpstream(), startGarbageUpstream()]);
    recorder = await startRecordingUpstream();
    closers.push(() => everything.process.stop(), () => kube.process.stop(), hang.close, garbage.close, recorder.close);
    const registry = {
      apiVersion: 'toolgate.dev/v1',
      kind: 'McpServers',
      servers: [
        {
          name: 'kubernetes',
          url: kube.url,
          timeout_seconds: 60,
          tools: {
            pods_list_in_namespace: { action: 'list', resource: 'pod', namespace: { from: '/namespace' } },
            pods_get: { action: 'get', resource: 'pod', namespace: { from: '/namespace' }, fields: { name: { from: '/name' } } },
            pods_delete: { action: 'delete', resource: 'pod', namespace: { from: '/namespace' }, fields: { name: { from: '/name' } } },
            resources_scale: { action: 'scale', resource: { from: '/kind' }, namespace: { from: '/namespace' }, fields: { name: { from: '/name' }, desired_replicas: { from: '/scale' } } },
          },
        },
        { name: 'everything', url: everything.url, timeout_seconds: 30, tools: { echo: { action: 'invoke', resource: 'echo' } } },
        { name: 'down', url: `http://127.0.0.1:${await freePort()}/mcp`, timeout_seconds: 5, connect_timeout_seconds: 1 },
        { name: 'hang', url: hang.url, timeout_seconds: 2 },
        { name: 'garbage', url: garbage.url, timeout_seconds: 5 },
        { name: 'recorder', url: recorder.url, credentials: { header: 'authorization', value_env: 'E2E_UPSTREAM_TOKEN' } },
      ],
    };
    const policies = await policiesWithData(dir, 'mcp-policies', { authorized_agents: ['ops-bot', 'viewer-bot'] });
    await writeFile(
      join(policies, 'agent', 'authz', 'e2e_viewer.rego'),
      'package agent.authz\n\nimport rego.v1\n\n# e2e: viewer-bot reads and never writes (nor sees a tool that writes).\ndeny if {\n\tinput.agent_id == "viewer-bot"\n\tinput.tool_call\n\tnot input.action in read_actions\n}\n',
    );
    const bundle = await buildSeedBundle(dir, 'mcp-e2e', policies);
    const registryPath = join(dir, 'mcp-servers.yaml');
    await writeFile(registryPath, toYaml(registry));
    stack = await startStack({ engine: 'embedded', bundle: { file: bundle }, mcpServersPath: registryPath, authzEnv: { E2E_UPSTREAM_TOKEN: 'Bearer upstream-secret' }, audit: true, otlpEndpoint: collector.endpoint });
    resource = `http://127.0.0.1:${stack.envoyHttpPort}/mcp`;
  }, 600_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    await stack?.stop();
    await plane?.stop();
    await collector?.stop();
  });

  it('seed scenario over MCP (TypeScript SDK -> kubernetes-mcp-server): list in staging allowed, delete and scale in production refused with the reasons, the session goes on', async () => {
    const client = await connect('kubernetes', 'ops-bot');
    const listed = await client.callTool({ name: 'pods_list_in_namespace', arguments: { namespace: 'staging' } });
    expect(JSON.stringify(listed.content)).toContain('web-staging');

    const del = await refusal(client.callTool({ name: 'pods_delete', arguments: { namespace: 'production', name: 'web-production' } }));
    expect(del.code).toBe(-32003);
    expect(del.message).toContain('no rule allows action delete');
    expect(del.data).toMatchObject({ code: 'policy_denied', tool: 'pods_delete', policy_revision: 'mcp-e2e' });
    expect((del.data as { decision_id: string }).decision_id).toMatch(/^[0-9a-f-]{36}$/);

    const scale = await refusal(client.callTool({ name: 'resources_scale', arguments: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'production', name: 'api', scale: 3 } }));
    expect(scale.message).toContain('scale is not allowed in namespace production');

    const again = await client.callTool({ name: 'pods_list_in_namespace', arguments: { namespace: 'staging' } });
    expect(JSON.stringify(again.content)).toContain('web-staging');
    // Refused means never run: the pod and the deployment are as they were.
    const admin = plane.admin();
    expect((await admin.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: 'production', name: 'web-production' })).metadata?.name).toBe('web-production');
    expect((await admin.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: 'production', name: 'api' })).spec?.replicas).toBe(2);
  });

  it('filters tools/list per agent by the same policy, and refuses calling an unlisted tool', async () => {
    const ops = await connect('everything', 'ops-bot');
    const viewer = await connect('everything', 'viewer-bot');
    expect((await ops.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect((await viewer.listTools()).tools.map((t) => t.name)).toEqual([]);
    const kubeTools = (await (await connect('kubernetes', 'ops-bot')).listTools()).tools.map((t) => t.name).sort();
    expect(kubeTools).toEqual(['pods_get', 'pods_list_in_namespace']);

    expect((await ops.callTool({ name: 'echo', arguments: { message: 'through toolgate' } })).content).toEqual([{ type: 'text', text: 'Echo: through toolgate' }]);
    const unlisted = await refusal(viewer.callTool({ name: 'echo', arguments: { message: 'x' } }));
    expect(unlisted.code).toBe(-32003);
    const unmapped = await refusal(ops.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }));
    expect(unmapped.message).toMatch(/the policy does not allow calling tool "get-sum"/);
  });

  it('one policy refuses the same operation over REST and over MCP', async () => {
    const args = { namespace: 'production', name: 'api', replicas: 3 };
    const rest = await stack.call('/v1/tools/k8s_scale_deployment', args, { jwt: await stack.jwtFor('ops-bot') });
    expect(rest.status).toBe(403);
    expect(rest.json.error.reasons).toContain('scale is not allowed in namespace production');

    const mcp = await stack.call('/mcp', { jsonrpc: '2.0', id: 'scale-1', method: 'tools/call', params: { name: 'k8s_scale_deployment', arguments: args } }, { jwt: await token('ops-bot') });
    expect(mcp.status).toBe(200);
    expect(mcp.json).toMatchObject({ jsonrpc: '2.0', id: 'scale-1', error: { code: -32003, data: { code: 'policy_denied', tool: 'k8s_scale_deployment' } } });
    expect(mcp.json.error.data.reasons).toEqual(rest.json.error.reasons);
    expect(stack.upstream.requests().filter((r) => r.path.startsWith('/mcp'))).toEqual([]);
  });

  it("carries an allowed tools/call to toolgate's own server with the contract's headers and an attestation over the arguments", async () => {
    stack.upstream.clear();
    const args = { namespace: 'staging', labelSelector: 'app=web' };
    const res = await stack.call('/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'k8s_list_pods', arguments: args } }, { jwt: await token('ops-bot') });
    expect(res.status).toBe(200);
    const [seen] = stack.upstream.requests();
    expect(seen?.headers).toMatchObject({ 'x-toolgate-mcp-method': 'tools/call', 'x-toolgate-tool': 'k8s_list_pods', 'x-toolgate-agent-id': 'ops-bot', 'x-toolgate-agent-auth': 'jwt' });
    expect(seen?.headers.authorization).toBeUndefined();
    const key = await loadAttestationKey(stack.creds.decisionKeyPath);
    const decided = { decisionId: seen?.headers['x-toolgate-decision-id'] ?? '', agentId: 'ops-bot', agentMethod: 'jwt', tool: 'k8s_list_pods', policyRevision: 'mcp-e2e', scope: 'mcp:tools/call' };
    expect(verifyAttestation(key, { ...decided, body: Buffer.from(seen?.body ?? '') }, seen?.headers['x-toolgate-attestation'])).toBe(true);

    stack.upstream.clear();
    await stack.call('/mcp', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { jwt: await token('viewer-bot') });
    const visible = stack.upstream.requests()[0]?.headers['x-toolgate-visible-tools'] ?? '';
    // viewer-bot: the reads, not scale (the seed lists it for ops-bot) nor the local tools (e2e rule).
    expect(visible.split(',')).toContain('k8s_list_pods');
    expect(visible.split(',')).not.toContain('k8s_scale_deployment');
    expect(visible.split(',')).not.toContain('echo');
  });

  it('the Python SDK from PyPI speaks to the same gateway: filtered list, allowed and refused calls in one session', async () => {
    const everything = await runPythonMcpClient(url('everything').href, await token('ops-bot'), [
      { name: 'echo', arguments: { message: 'from python' } },
      { name: 'get-sum', arguments: { a: 1, b: 2 } },
    ]);
    expect(everything.error).toBeUndefined();
    expect(everything.tools).toEqual(['echo']);
    // The Python SDK opens with initialize (its handshake revisions); server-everything answers 2025-11-25.
    expect(['2025-06-18', '2025-11-25']).toContain(everything.protocol_version);
    expect(everything.calls?.[0]).toMatchObject({ name: 'echo', is_error: false, text: 'Echo: from python' });
    expect(everything.calls?.[1]?.error).toMatchObject({ code: -32003, data: { code: 'policy_denied' } });

    const kube = await runPythonMcpClient(url('kubernetes').href, await token('ops-bot'), [
      { name: 'pods_list_in_namespace', arguments: { namespace: 'staging' } },
      { name: 'pods_delete', arguments: { namespace: 'production', name: 'web-production' } },
      { name: 'pods_list_in_namespace', arguments: { namespace: 'staging' } },
    ]);
    expect(kube.error).toBeUndefined();
    expect(kube.calls?.[0]?.text).toContain('web-staging');
    expect(kube.calls?.[1]?.error?.message).toContain('no rule allows action delete');
    expect(kube.calls?.[2]?.text).toContain('web-staging');
  }, 300_000);

  it('observes every MCP decision: decision log, agent_tool_calls_total, audit trail, and a span with the MCP conventions in the agent\'s trace (params._meta.traceparent)', async () => {
    const client = await connect('kubernetes', 'ops-bot');
    await refusal(client.callTool({ name: 'pods_delete', arguments: { namespace: 'production', name: 'web-production' } }));
    const metrics = await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/metrics`)).text();
    expect(metrics).toMatch(/agent_tool_calls_total\{agent_id="ops-bot",action="delete",resource="pod",result="denied"\} [1-9]/);
    expect(metrics).toMatch(/agent_tool_calls_total\{agent_id="ops-bot",action="list",resource="pod",result="allowed"\} [1-9]/);
    expect(metrics).not.toMatch(/agent_tool_calls_total\{agent_id="ops-bot",action="",resource="",result="allowed"\}/);

    const log = await readFile(stack.authz.logPath, 'utf8');
    const decisions = log.split('\n').filter((l) => l.includes('"msg":"decision"')).map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
    const del = decisions.find((d) => d.tool === 'pods_delete' && d.mcp?.server === 'kubernetes');
    expect(del).toMatchObject({ allowed: false, action: 'delete', resource: 'pod', namespace: 'production', mcp: { method: 'tools/call', server: 'kubernetes' } });
    expect(del?.mcp.session_id).toBeTruthy();

    const audit = (await readFile(stack.authzAuditPath ?? '', 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.some((a) => a.kind === 'refused_call' && a.tool === 'pods_delete' && a.mcp_server === 'kubernetes')).toBe(true);
    expect(audit.some((a) => a.kind === 'upstream_call_allowed' && a.tool === 'pods_list_in_namespace')).toBe(true);

    // An agent that carries its trace in params._meta (no traceparent header): the check joins that trace.
    const traceId = randomBytes(16).toString('hex');
    const res = await rpc('everything', { jsonrpc: '2.0', id: 'traced-1', method: 'tools/call', params: { name: 'get-sum', arguments: { a: 1, b: 2 }, _meta: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } } }, await token('ops-bot'));
    expect(res.json.error.code).toBe(-32003);
    const spans = await collector.waitForTrace(traceId, (t) => t.some((s) => s.name === 'toolgate.authz.check'), 30_000);
    const check = spans.find((s) => s.name === 'toolgate.authz.check');
    expect(check?.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'get-sum', 'gen_ai.operation.name': 'execute_tool', 'jsonrpc.request.id': 'traced-1', 'toolgate.decision.allowed': false });
  }, 90_000);

  describe('bad input and faults get their specific answers', () => {
    it('duplicate keys in params: 400 parse error naming the key', async () => {
      const res = await stack.call('/mcp/everything', undefined, {
        jwt: await token('ops-bot'),
        rawBody: '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a","message":"b"}}}',
      });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700, data: { code: 'invalid_jsonrpc' } } });
      expect(res.json.error.message).toContain('duplicate key "message" in object at /params/arguments');
    });

    it("arguments that fail toolgate's catalog schema: a tool execution error naming the field, never reaching the executor, recorded as a refusal", async () => {
      stack.upstream.clear();
      const call = { jsonrpc: '2.0', id: 'bad-args', method: 'tools/call', params: { name: 'k8s_scale_deployment', arguments: { namespace: 'staging', name: 'api', replicas: -1 } } };
      const res = await stack.call('/mcp', call, { jwt: await token('ops-bot'), headers: { accept: 'application/json, text/event-stream' } });
      // MCP 2025-11-25: an input validation error is a tool execution error (a result), so the model can correct itself.
      expect(res.status).toBe(200);
      expect(res.json.error).toBeUndefined();
      const decisionId = res.headers['x-toolgate-decision-id'];
      expect(res.json).toEqual({
        jsonrpc: '2.0',
        id: 'bad-args',
        result: {
          content: [{ type: 'text', text: 'invalid arguments for tool "k8s_scale_deployment": /replicas must be >= 0' }],
          isError: true,
          _meta: { 'toolgate.dev/call': { status: 'invalid_arguments', fields: [{ path: '/replicas', message: 'must be >= 0' }], decision_id: decisionId } },
        },
      });
      expect(stack.upstream.requests()).toHaveLength(0);
      // Everywhere else it is the refusal it was: decision log and audit trail say invalid_arguments.
      const record = async (): Promise<Record<string, unknown> | undefined> =>
        (await readFile(stack.authz.logPath, 'utf8')).split('\n').filter((l) => l.includes(`"decision_id":"${String(decisionId)}"`) && l.includes('"msg":"decision"')).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      const deadline = Date.now() + 30_000;
      while (!(await record()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await record()).toMatchObject({ allowed: false, result: 'denied', code: 'invalid_arguments', tool: 'k8s_scale_deployment', agent_id: 'ops-bot' });
      const audit = (await readFile(stack.authzAuditPath ?? '', 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.find((a) => a.decision_id === decisionId)).toMatchObject({ kind: 'refused_call', code: 'invalid_arguments', tool: 'k8s_scale_deployment' });

      // An unknown tool is not a tool's answer: it stays a JSON-RPC error.
      const unknown = await stack.call('/mcp', { ...call, id: 'no-tool', params: { name: 'no_such_tool', arguments: {} } }, { jwt: await token('ops-bot'), headers: { accept: 'application/json, text/event-stream' } });
      expect(unknown.status).toBe(200);
      expect(unknown.json).toMatchObject({ id: 'no-tool', error: { code: -32602, data: { code: 'unknown_tool' } } });
      expect(stack.upstream.requests()).toHaveLength(0);
    }, 60_000);

    it('a batch: 400 invalid request', async () => {
      const res = await rpc('everything', [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }], await token('ops-bot'));
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: -32600, message: 'JSON-RPC batches are not supported: send one message per request' });
    });

    it('Mcp-Method / Mcp-Name headers that disagree with the body: 400 HeaderMismatch', async () => {
      const res = await rpc('everything', { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, await token('ops-bot'), { 'mcp-method': 'tools/call', 'mcp-name': 'get-sum' });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ id: 4, error: { data: { code: 'header_mismatch' } } });
      expect(res.json.error.message).toMatch(/^HeaderMismatch: Mcp-Name header "get-sum"/);
    });

    it('a JWT for another audience is refused, and no credentials send the client to the resource metadata', async () => {
      const wrong = await rpc('everything', { jsonrpc: '2.0', id: 5, method: 'tools/list' }, await stack.jwtFor('ops-bot'));
      expect(wrong.status).toBe(401);
      expect(wrong.text).toMatch(/[Aa]udience/);

      const checksBefore = await authzChecks();
      expect(checksBefore).toBeGreaterThan(0);
      const anon = await fetch(url('everything'), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
      expect(anon.status).toBe(401);
      // Envoy's own answer at the headers (no check, no body buffered), in MCP's shape.
      expect(await anon.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001, data: { code: 'unauthenticated' } } });
      expect(await authzChecks()).toBe(checksBefore);
      const { resourceMetadataUrl } = extractWWWAuthenticateParams(anon);
      expect(resourceMetadataUrl?.href).toBe(`http://127.0.0.1:${stack.envoyHttpPort}/.well-known/oauth-protected-resource/mcp`);
      const metadata = await discoverOAuthProtectedResourceMetadata(url('everything'), { resourceMetadataUrl });
      expect(metadata.resource).toBe(resource);
      expect(metadata.authorization_servers).toEqual([stack.creds.jwtIssuer]);

      // The SDK client without a token fails on the 401 (an OAuth provider would take it from here).
      const client = new Client({ name: 'anon', version: '1' });
      await expect(client.connect(new StreamableHTTPClientTransport(url('kubernetes')))).rejects.toThrow(/no verified agent identity/);
    });

    it('an upstream that is down, hangs, or answers garbage: a JSON-RPC error for the request, never a hang', async () => {
      const jwt = await token('ops-bot');
      const call = { jsonrpc: '2.0', id: 7, method: 'ping' };
      const down = await rpc('down', call, jwt);
      expect(down.status).toBe(200);
      expect(down.json).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32603, data: { code: 'upstream_unavailable' } } });
      expect(down.json.error.message).toContain('the MCP server down did not answer');

      const started = Date.now();
      const hung = await rpc('hang', call, jwt);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(hung.json).toMatchObject({ id: 7, error: { code: -32603, data: { code: 'upstream_unavailable' } } });

      const garbage = await rpc('garbage', { jsonrpc: '2.0', id: 8, method: 'tools/list' }, jwt);
      expect(garbage.status).toBe(200);
      expect(garbage.headers['content-type']).toBe('application/json');
      expect(garbage.json).toMatchObject({ id: 8, error: { code: -32603, data: { code: 'upstream_list_refused' } } });
      expect(garbage.json.error.message).toContain('MCP server "garbage" answered tools/list with');

      const unknown = await rpc('nowhere', call, jwt);
      expect(unknown.status).toBe(404);
    }, 60_000);
  });

  it('streams server events (GET), ends sessions (DELETE), and never passes the agent token upstream', async () => {
    const jwt = await token('ops-bot');
    const init = await fetch(url('everything'), {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    expect(init.status).toBe(200);
    const session = init.headers.get('mcp-session-id') ?? '';
    expect(session).not.toBe('');
    await init.text();
    const common = { authorization: `Bearer ${jwt}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    // The server's stream answers its headers at once and stays open: Envoy does not buffer it.
    const controller = new AbortController();
    const stream = await fetch(url('everything'), { method: 'GET', headers: { ...common, accept: 'text/event-stream' }, signal: controller.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    controller.abort();
    const end = await fetch(url('everything'), { method: 'DELETE', headers: common });
    expect(end.status).toBe(200);

    // Toolgate presents its own credentials upstream; the agent's token stays at the gateway.
    const pong = await rpc('recorder', { jsonrpc: '2.0', id: 9, method: 'ping' }, jwt);
    expect(pong.json).toEqual({ jsonrpc: '2.0', id: 9, result: {} });
    const seen = recorder.headers.at(-1) ?? {};
    expect(seen.authorization).toBe('Bearer upstream-secret');
    expect(Object.keys(seen).filter((h) => h.startsWith('x-toolgate-') && h !== 'x-toolgate-decision-id' && h !== 'x-toolgate-policy-revision')).toEqual([]);
  });
});
