import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ToolCatalog } from '../../../src/catalog/tool-catalog.js';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import type { CheckRequest } from '../../../src/authz/grpc/check-types.js';
import { DEFAULT_IDENTITY_OPTIONS } from '../../../src/authz/input/agent-identity.js';
import { mapCheckRequest } from '../../../src/authz/input/build-input.js';
import { encodeInputJson, wholeInputJson } from '../../../src/authz/input/input-json.js';
import { jsonToStruct } from '../../../src/authz/grpc/struct.js';
import { Rejection } from '../../../src/authz/response/rejection.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

let catalog: ToolCatalog;
beforeAll(async () => {
  catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
});

function request(opts: { path?: string; method?: string; body?: string | Buffer; headers?: Record<string, string>; principal?: string; jwt?: Record<string, unknown>; ext?: Record<string, string> }): CheckRequest {
  const body = opts.body ?? '';
  return {
    attributes: {
      source: { address: { socket_address: { address: '10.0.0.7', port_value: 51234 } }, ...(opts.principal ? { principal: opts.principal } : {}) },
      destination: { address: { socket_address: { address: '127.0.0.1', port_value: 10000 } } },
      request: {
        time: { seconds: '1764000000', nanos: 123000000 },
        http: {
          id: 'req-1',
          method: opts.method ?? 'POST',
          headers: { ':authority': 'gw', 'content-type': 'application/json', ...opts.headers },
          path: opts.path ?? '/v1/tools/k8s_scale_deployment?dry=1&dry=2',
          host: 'gw',
          scheme: 'http',
          size: String(Buffer.byteLength(body)),
          protocol: 'HTTP/1.1',
          ...(Buffer.isBuffer(body) ? { raw_body: body } : { raw_body: Buffer.from(body) }),
        },
      },
      context_extensions: opts.ext ?? { protocol: 'rest' },
      ...(opts.jwt ? { metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': jsonToStruct({ jwt_payload: opts.jwt }) } } } : {}),
    },
  };
}

const map = (req: CheckRequest) => mapCheckRequest(req, { catalog, identity: DEFAULT_IDENTITY_OPTIONS });

function rejection(fn: () => unknown): Rejection {
  try {
    fn();
  } catch (err) {
    if (err instanceof Rejection) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('request -> OPA input', () => {
  const scale = '{"namespace":"staging","name":"api","replicas":3}';

  it('builds the OPA Envoy plugin fields with their protojson names', () => {
    const { input } = map(request({ body: scale, jwt: { sub: 'ops-bot', iss: 'https://issuer' } }));
    expect(input.version).toEqual({ ext_authz: 'v3', encoding: 'protojson' });
    expect(input.parsed_path).toEqual(['v1', 'tools', 'k8s_scale_deployment']);
    expect(input.parsed_query).toEqual({ dry: ['1', '2'] });
    expect(input.parsed_body).toEqual({ namespace: 'staging', name: 'api', replicas: 3 });
    expect(input.truncated_body).toBe(false);
    const attributes = input.attributes as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(attributes.source.address.socketAddress).toEqual({ address: '10.0.0.7', portValue: 51234 });
    expect(attributes.request.http).toMatchObject({ id: 'req-1', method: 'POST', path: '/v1/tools/k8s_scale_deployment?dry=1&dry=2', size: String(scale.length), body: scale });
    expect(attributes.request.time).toBe('2025-11-24T16:00:00.123Z');
    expect(attributes.contextExtensions).toEqual({ protocol: 'rest' });
    expect(attributes.metadataContext.filterMetadata['envoy.filters.http.jwt_authn'].jwt_payload.sub).toBe('ops-bot');
  });

  it('adds the agent fields and the catalog-derived flat fields', () => {
    const { input } = map(request({ body: scale, jwt: { sub: 'ops-bot', iss: 'https://issuer' } }));
    expect(input.agent).toMatchObject({ id: 'ops-bot', method: 'jwt', issuer: 'https://issuer' });
    expect(input.tool_call).toEqual({ protocol: 'rest', tool: 'k8s_scale_deployment', arguments: { namespace: 'staging', name: 'api', replicas: 3 } });
    expect(input).toMatchObject({ agent_id: 'ops-bot', action: 'scale', resource: 'deployment', namespace: 'staging', desired_replicas: 3, name: 'api' });
  });

  it('takes the identity from the mTLS principal (SPIFFE) and never from headers', () => {
    const { input } = map(request({ body: scale, principal: 'spiffe://toolgate.local/agent/ops-bot', headers: { 'x-agent-id': 'admin' } }));
    expect(input.agent).toMatchObject({ id: 'spiffe://toolgate.local/agent/ops-bot', method: 'mtls', trust_domain: 'toolgate.local' });
    expect(input.source_principal).toBe('spiffe://toolgate.local/agent/ops-bot');
    const r = rejection(() => map(request({ body: scale, headers: { 'x-agent-id': 'ops-bot', authorization: 'Bearer forged' } })));
    expect(r.code).toBe('unauthenticated');
  });

  it('keeps mTLS and JWT agent ids apart: a JWT cannot name itself as a certificate identity', () => {
    const impostor = rejection(() => map(request({ body: scale, jwt: { sub: 'spiffe://toolgate.local/agent/ops-bot' } })));
    expect(impostor.code).toBe('unauthenticated');
    expect(impostor.message).toMatch(/must not contain ':'/);
    expect(rejection(() => map(request({ body: scale, jwt: { sub: 'x509:CN=ops-bot' } }))).code).toBe('unauthenticated');
    // A certificate without a SPIFFE ID is named with a scheme too, so no JWT sub can equal it.
    const { input } = map(request({ body: scale, principal: 'ops-bot' }));
    expect(input.agent).toMatchObject({ id: 'x509:ops-bot', method: 'mtls', principal: 'ops-bot' });
    expect(input.agent_id).toBe('x509:ops-bot');
  });

  it('refuses bad input with specific codes', () => {
    const jwt = { sub: 'ops-bot' };
    expect(rejection(() => map(request({ jwt, body: '{"a":1,"a":2}' }))).code).toBe('invalid_body');
    expect(rejection(() => map(request({ jwt, body: Buffer.from([0xff, 0xfe]) }))).code).toBe('invalid_body');
    expect(rejection(() => map(request({ jwt, body: scale, headers: { 'x-envoy-auth-partial-body': 'true' } }))).code).toBe('body_too_large');
    // A body that filled the limit exactly is not flagged by Envoy: its content-length says more is coming.
    const cl = (n: number): Record<string, string> => ({ 'x-envoy-auth-partial-body': 'false', 'content-length': String(n) });
    expect(rejection(() => map(request({ jwt, body: scale, headers: cl(Buffer.byteLength(scale) + 6) }))).code).toBe('body_too_large');
    expect(map(request({ jwt, body: scale, headers: cl(Buffer.byteLength(scale)) })).toolCall?.tool).toBe('k8s_scale_deployment');
    expect(rejection(() => map(request({ jwt, body: '{}', path: '/v1/tools/nope' }))).code).toBe('unknown_tool');
    const args = rejection(() => map(request({ jwt, body: '{"namespace":"staging","name":"a","replicas":-4}' })));
    expect(args.code).toBe('invalid_arguments');
    expect(args.details).toEqual([{ path: '/replicas', message: 'must be >= 0' }]);
    expect(args.tool).toBe('k8s_scale_deployment');
    expect(args.agentId).toBe('ops-bot');
    expect(rejection(() => map(request({ jwt, body: scale, method: 'GET' }))).code).toBe('method_not_allowed');
    expect(rejection(() => map(request({ jwt, body: scale, path: '/v1/other' }))).code).toBe('invalid_path');
    expect(rejection(() => map(request({ jwt, body: scale, path: '/v1/tools/%E0%A4%A' }))).code).toBe('invalid_path');
    expect(rejection(() => map(request({ jwt, body: scale, ext: { protocol: 'carrier-pigeon' } }))).code).toBe('invalid_path');
  });

  it('lets a route pin its tool, and maps plain HTTP routes without a tool call', () => {
    const pinned = map(request({ jwt: { sub: 'a' }, body: '{"message":"hi"}', path: '/legacy/say', ext: { protocol: 'rest', tool: 'echo' } }));
    expect(pinned.toolCall?.tool).toBe('echo');
    const plain = map(request({ body: 'a=1', path: '/health', headers: { 'content-type': 'application/x-www-form-urlencoded' }, ext: { protocol: 'http' } }));
    expect(plain.toolCall).toBeUndefined();
    expect(plain.input.parsed_body).toEqual({ a: ['1'] });
    expect(plain.input.agent).toBeUndefined();
  });
});

describe('the policy reads the values the tool runs with', () => {
  const padded = (json: string): string => json.replace(/}$/, `${' '.repeat(5000)}}`);

  it('reuses the body bytes in the input only when every number is written as JavaScript writes it back', () => {
    const exact = map(request({ body: padded('{"namespace":"staging","name":"api","replicas":3}'), jwt: { sub: 'ops-bot' } }));
    expect(exact.rawArguments?.json.toString()).toBe(padded('{"namespace":"staging","name":"api","replicas":3}'));
    // 1e-400 is 0 to JavaScript (and the executor) but not to OPA's decimals: the input must say 0.
    const underflow = map(request({ body: padded('{"namespace":"staging","name":"api","replicas":1e-400}'), jwt: { sub: 'ops-bot' } }));
    expect(underflow.rawArguments?.json.toString()).toBe('{"namespace":"staging","name":"api","replicas":0}');
    expect(wholeInputJson(encodeInputJson(underflow.input, underflow.rawArguments)).toString()).toContain('"parsed_body":{"namespace":"staging","name":"api","replicas":0}');
  });
});
