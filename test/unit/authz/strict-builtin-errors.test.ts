import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseAuthzConfig } from '../../../src/authz/config.js';
import { RemoteOpaEngine } from '../../../src/authz/policy/remote-engine.js';

const base = 'catalog: tools.yaml\npolicy:\n  engine: remote\n  remote: { url: "http://127.0.0.1:1" }\n';

describe('policy.strict_builtin_errors', () => {
  it('defaults to false (as OPA), accepts a boolean, refuses anything else', () => {
    expect(parseAuthzConfig(base, '/etc/toolgate/authz.yaml').policy.strict_builtin_errors).toBe(false);
    expect(parseAuthzConfig(`${base}  strict_builtin_errors: true\n`, '/etc/toolgate/authz.yaml').policy.strict_builtin_errors).toBe(true);
    expect(() => parseAuthzConfig(`${base}  strict_builtin_errors: "yes"\n`, '/etc/toolgate/authz.yaml')).toThrow(ConfigError);
  });

  it('makes the remote engine ask OPA for strict builtin errors, so both engines decide alike', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"result": true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await new RemoteOpaEngine({ url, decisionPath: 'envoy/authz/allow', timeoutMs: 2000, strictBuiltinErrors: true }).evaluate({});
      await new RemoteOpaEngine({ url, decisionPath: 'envoy/authz/allow', timeoutMs: 2000 }).evaluate({});
    } finally {
      server.close();
    }
    expect(seen).toEqual(['/v1/data/envoy/authz/allow?provenance=true&strict-builtin-errors=true', '/v1/data/envoy/authz/allow?provenance=true']);
  });
});
