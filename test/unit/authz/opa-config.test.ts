import { describe, expect, it } from 'vitest';
import { OpaConfigError, parseOpaConfig } from '../../../src/authz/opa-config/opa-config.js';

const envoyPluginConfig = `
services:
  - name: acmecorp
    url: https://bundles.example.com/v1
    credentials:
      bearer:
        token: "\${BUNDLE_TOKEN}"
bundles:
  authz:
    service: acmecorp
    resource: bundles/authz.tar.gz
    polling: { min_delay_seconds: 10, max_delay_seconds: 20 }
    signing: { keyid: global_key, scope: write }
keys:
  global_key: { algorithm: RS256, key: "-----BEGIN PUBLIC KEY-----..." }
decision_logs:
  console: true
  service: acmecorp
  reporting: { min_delay_seconds: 5, max_delay_seconds: 10 }
labels: { app: toolgate, region: eu }
plugins:
  envoy_ext_authz_grpc:
    addr: :9191
    path: envoy/authz/allow
`;

describe('OPA configuration files', () => {
  it('reads services, one bundle with signing, keys, decision logs, labels and the Envoy plugin settings', () => {
    const s = parseOpaConfig(envoyPluginConfig, '/etc/opa/config.yaml', { BUNDLE_TOKEN: 'tok' });
    expect(s.services.get('acmecorp')).toMatchObject({ url: 'https://bundles.example.com/v1', bearer: { token: 'tok', scheme: 'Bearer' } });
    expect(s.bundle).toMatchObject({ name: 'authz', resource: 'bundles/authz.tar.gz', pollMinSeconds: 10, pollMaxSeconds: 20, cacheDir: '/etc/opa/.opa/bundles/authz' });
    expect(s.bundle?.signing).toMatchObject({ keyid: 'global_key', scope: 'write', keys: { global_key: { algorithm: 'RS256' } } });
    expect(s.decisionLogs).toMatchObject({ service: 'acmecorp', console: true, resource: '/logs', maskDecision: 'system/log/mask', minDelaySeconds: 5 });
    expect(s.labels).toEqual({ app: 'toolgate', region: 'eu' });
    expect(s.plugin).toEqual({ addr: ':9191', path: 'envoy/authz/allow' });
  });

  it('names what it does not run instead of ignoring it', () => {
    const bad = `
services: { s: { url: "https://x", credentials: { s3_signing: {} } } }
bundles: { a: { service: s }, b: { service: s } }
status: { service: s }
decision_logs: { plugin: my_plugin }
`;
    expect(() => parseOpaConfig(bad, 'c.yaml')).toThrow(OpaConfigError);
    try {
      parseOpaConfig(bad, 'c.yaml');
    } catch (err) {
      const m = (err as Error).message;
      expect(m).toMatch(/"status" is not supported/);
      expect(m).toMatch(/"services.s.credentials.s3_signing" is not supported/);
      expect(m).toMatch(/one bundle/);
      expect(m).toMatch(/"decision_logs.plugin" is not supported/);
    }
    expect(() => parseOpaConfig('bundles: { a: { service: nope } }\nservices: { s: { url: "http://x" } }', 'c.yaml')).toThrow(/service "nope", which is not in services \(s\)/);
  });
});
