import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { startEnvoy } from '../support/envoy-process.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { sharedFixture } from '../support/shared-fixtures.js';

/**
 * The OPA Envoy plugin's quick-start policy (package envoy.authz: an HS256 JWT checked with
 * io.jwt.decode_verify and time.now_ns) run unchanged behind a real Envoy, on the embedded engine and on the
 * remote engine (a real OPA): the same requests get the same decisions.
 */
const QUICK_START = sharedFixture('opa-envoy-plugin/quick-start.rego');

/**
 * The plugin's quick_start.yaml policy has `default allow := false` and `allow if { is_token_valid;
 * action_allowed }`. When the fixture copy lacks that decision rule, the test adds exactly those two rules
 * as a second module of the same package; the fixture file itself is used as it is.
 */
const DECISION_RULES = 'package envoy.authz\n\ndefault allow := false\n\nallow if {\n\tis_token_valid\n\taction_allowed\n}\n';

interface Gateway {
  envoyPort: number;
  opsPort: number;
  authz: ManagedProcess;
  processes: ManagedProcess[];
}

function hs256(payload: Record<string, unknown>, secret: string): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** An Envoy shaped like the plugin's quick start: one listener, ext_authz over gRPC, every route to the app. */
function envoyConfig(p: { listen: number; admin: number; authz: number; upstream: number; accessLog: string }): string {
  const cluster = (name: string, port: number, http2: boolean): Record<string, unknown> => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    ...(http2
      ? { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } }
      : {}),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
  });
  return toYaml({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: p.admin } } },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: { socket_address: { address: '127.0.0.1', port_value: p.listen } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'ingress_http',
                    access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: p.accessLog } }],
                    route_config: {
                      name: 'local_route',
                      virtual_hosts: [
                        {
                          name: 'backend',
                          domains: ['*'],
                          routes: [
                            {
                              match: { prefix: '/' },
                              route: { cluster: 'app' },
                              // A plain HTTP route, as the plugin sees every request (no tool-call envelope).
                              typed_per_filter_config: {
                                'envoy.filters.http.ext_authz': {
                                  '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
                                  check_settings: { context_extensions: { protocol: 'http' } },
                                },
                              },
                            },
                          ],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.ext_authz',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
                          transport_api_version: 'V3',
                          with_request_body: { max_request_bytes: 8192, allow_partial_message: true, pack_as_bytes: true },
                          failure_mode_allow: false,
                          grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' },
                        },
                      },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [cluster('authz', p.authz, true), cluster('app', p.upstream, false)],
    },
  });
}

describe.skipIf(!QUICK_START)("the OPA Envoy plugin's quick-start policy through a real Envoy (fixture absent: skipped)", () => {
  let work: string;
  let upstream: EchoUpstream;
  let src: string;
  let wasmBundle: string;
  const gateways: Record<'embedded' | 'remote', Gateway | undefined> = { embedded: undefined, remote: undefined };

  async function startGateway(engine: 'embedded' | 'remote', bundles: { wasm: string; rego: string }): Promise<Gateway> {
    const dir = join(work, engine);
    await mkdir(dir, { recursive: true });
    const processes: ManagedProcess[] = [];
    let remote: { url: string } | undefined;
    if (engine === 'remote') {
      const opaPort = await freePort();
      const opa = startProcess({ name: 'opa', command: await ensureOpa(), args: ['run', '--server', '--addr', `127.0.0.1:${opaPort}`, '--log-level', 'error', '--bundle', bundles.rego], logDir: dir });
      processes.push(opa);
      remote = { url: `http://127.0.0.1:${opaPort}` };
      await waitForHttp(`${remote.url}/health?bundles`, { process: opa, timeoutMs: 30_000 });
    }
    const [grpcPort, httpPort, envoyPort, adminPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const configPath = join(dir, 'authz.yaml');
    await writeFile(
      configPath,
      toYaml({
        grpc: { address: `127.0.0.1:${grpcPort}` },
        http: { address: `127.0.0.1:${httpPort}` },
        catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'),
        policy: {
          engine,
          decision: 'envoy/authz/allow',
          ...(engine === 'embedded' ? { bundle: { file: bundles.wasm, poll_interval_ms: 200 } } : { remote: { url: remote?.url, timeout_ms: 2000 } }),
        },
      }),
    );
    const authz = startProcess({ name: 'authz', command: process.execPath, args: [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], logDir: dir });
    processes.push(authz);
    await waitForHttp(`http://127.0.0.1:${httpPort}/readyz`, { process: authz, timeoutMs: 30_000 });
    const envoyPath = join(dir, 'envoy.yaml');
    await writeFile(envoyPath, envoyConfig({ listen: envoyPort, admin: adminPort, authz: grpcPort, upstream: upstream.port, accessLog: join(dir, 'access.log') }));
    processes.push(await startEnvoy({ configPath: envoyPath, logDir: dir, adminPort }));
    return { envoyPort, opsPort: httpPort, authz, processes };
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-plugin-quick-start-'));
    src = join(work, 'policy');
    await mkdir(src);
    const policy = await readFile(QUICK_START as string, 'utf8');
    await writeFile(join(src, 'quick-start.rego'), policy);
    if (!/^(default\s+)?allow\b/m.test(policy)) await writeFile(join(src, 'decision.rego'), DECISION_RULES);
    const opaPath = await ensureOpa();
    const wasm = join(work, 'bundle-wasm.tar.gz');
    wasmBundle = wasm;
    const rego = join(work, 'bundle-rego.tar.gz');
    await buildBundle({ opaPath, sourceDir: src, outFile: wasm, revision: 'quick-start', entrypoints: ['envoy/authz/allow'] });
    await buildBundle({ opaPath, sourceDir: src, outFile: rego, revision: 'quick-start', target: 'rego' });
    upstream = await startEchoUpstream();
    gateways.embedded = await startGateway('embedded', { wasm, rego });
    gateways.remote = await startGateway('remote', { wasm, rego });
  });
  afterAll(async () => {
    for (const g of Object.values(gateways)) for (const p of (g?.processes ?? []).reverse()) await p.stop();
    await upstream?.close();
  });

  async function status(engine: 'embedded' | 'remote', method: string, path: string, token: string, body?: unknown): Promise<number> {
    const g = gateways[engine] as Gateway;
    const res = await fetch(`http://127.0.0.1:${g.envoyPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    await res.arrayBuffer();
    return res.status;
  }

  it('allows a valid admin token, denies an expired one and a wrong signature; both engines decide alike', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sub = Buffer.from('alice').toString('base64url');
    const cases: { name: string; method: string; path: string; token: string; body?: unknown; want: number }[] = [
      { name: 'valid HS256, role admin, GET /people', method: 'GET', path: '/people', token: hs256({ role: 'admin', sub, nbf: now - 60, exp: now + 600 }, 'secret'), want: 200 },
      { name: 'valid HS256, role guest, GET /people', method: 'GET', path: '/people', token: hs256({ role: 'guest', sub, nbf: now - 60, exp: now + 600 }, 'secret'), want: 200 },
      { name: 'expired HS256, role admin', method: 'GET', path: '/people', token: hs256({ role: 'admin', sub, nbf: now - 600, exp: now - 60 }, 'secret'), want: 403 },
      { name: 'not yet valid (nbf in the future)', method: 'GET', path: '/people', token: hs256({ role: 'admin', sub, nbf: now + 600, exp: now + 1200 }, 'secret'), want: 403 },
      { name: 'wrong signature (other secret)', method: 'GET', path: '/people', token: hs256({ role: 'admin', sub, nbf: now - 60, exp: now + 600 }, 'not-the-secret'), want: 403 },
      { name: 'admin POST /people with another name', method: 'POST', path: '/people', token: hs256({ role: 'admin', sub, nbf: now - 60, exp: now + 600 }, 'secret'), body: { firstname: 'Bob' }, want: 200 },
      { name: 'admin POST /people with its own name', method: 'POST', path: '/people', token: hs256({ role: 'admin', sub, nbf: now - 60, exp: now + 600 }, 'secret'), body: { firstname: 'Alice' }, want: 403 },
      { name: 'guest POST /people', method: 'POST', path: '/people', token: hs256({ role: 'guest', sub, nbf: now - 60, exp: now + 600 }, 'secret'), body: { firstname: 'Bob' }, want: 403 },
      { name: 'not a JWT', method: 'GET', path: '/people', token: 'garbage', want: 403 },
    ];
    const got = [];
    for (const c of cases) {
      got.push({ name: c.name, embedded: await status('embedded', c.method, c.path, c.token, c.body), remote: await status('remote', c.method, c.path, c.token, c.body) });
    }
    expect(got).toEqual(cases.map((c) => ({ name: c.name, embedded: c.want, remote: c.want })));
  });

  it('refuses a bundle whose policy calls http.send, naming the builtin in the log and readiness, and keeps serving the last good one', async () => {
    const g = gateways.embedded as Gateway;
    const withHttpSend = join(work, 'policy-http-send');
    await mkdir(withHttpSend);
    await writeFile(join(withHttpSend, 'quick-start.rego'), await readFile(join(src, 'quick-start.rego'), 'utf8'));
    await writeFile(
      join(withHttpSend, 'decision.rego'),
      'package envoy.authz\n\ndefault allow := false\n\nallow if {\n\tis_token_valid\n\thttp.send({"method": "GET", "url": "http://127.0.0.1:9/people"}).status_code == 200\n}\n',
    );
    const next = join(work, 'bundle-http-send.tar.gz');
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: withHttpSend, outFile: next, revision: 'needs-http-send', entrypoints: ['envoy/authz/allow'] });
    await writeFile(wasmBundle, await readFile(next));

    let ready: { ready?: boolean; status?: { bundle?: { revision?: string; lastError?: string } } } = {};
    const deadline = Date.now() + 30_000;
    while (!ready.status?.bundle?.lastError && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      ready = (await (await fetch(`http://127.0.0.1:${g.opsPort}/readyz`)).json()) as typeof ready;
    }
    expect(ready.ready).toBe(true);
    expect(ready.status?.bundle?.revision).toBe('quick-start');
    expect(ready.status?.bundle?.lastError).toMatch(/http\.send/);
    expect(await readFile(g.authz.logPath, 'utf8')).toMatch(/rejected[^\n]*http\.send/);

    const now = Math.floor(Date.now() / 1000);
    const token = hs256({ role: 'admin', sub: 'YWxpY2U', nbf: now - 60, exp: now + 600 }, 'secret');
    expect(await status('embedded', 'GET', '/people', token)).toBe(200);
  });
});
