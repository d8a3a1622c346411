import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseAuthzConfig } from '../../../src/authz/config.js';
import { parseExecutorConfig } from '../../../src/executor/config.js';
import { ENVOY_CLIENT_ID } from '../../../src/gateway/internal-credentials.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

/**
 * docker-compose.yml cannot be brought up here (no container engine), so its structure is checked: the
 * services the laptop setup promises, their ports, that everything it builds or mounts exists in the
 * repository, that inline configs parse with toolgate's own config loaders, and that Prometheus scrapes
 * what the services expose. test/e2e/compose-internal-tls.test.ts runs the setup service's command and the
 * authz server with compose's config.
 */
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  ports?: string[];
  volumes?: string[];
  configs?: { source: string; target: string }[];
  depends_on?: Record<string, { condition: string }>;
  command?: string[];
  environment?: Record<string, string>;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs: Record<string, { content?: string; file?: string }>;
}

const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;

describe('docker-compose.yml', () => {
  it('runs Envoy, the authz server, the executor, a bundle server, Redis, the collector, Jaeger and Prometheus', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['authz', 'bundle-build', 'bundle-server', 'envoy', 'executor', 'jaeger', 'otel-collector', 'prometheus', 'redis', 'setup'].sort());
    // The authz server keeps input.history in that Redis (not published on the host).
    expect(compose.services.redis?.ports ?? []).toEqual([]);
    expect((compose as unknown as { configs: { authz: { content: string } } }).configs.authz.content).toContain('store: { redis_url: "redis://redis:6379/0" }');
    const published = (svc: string): string[] => (compose.services[svc]?.ports ?? []).map((p) => p.split(':')[0] as string);
    expect(published('envoy')).toEqual(['8080', '8443']);
    expect(published('jaeger')).toContain('16686');
    expect(published('prometheus')).toContain('9090');
    const allPorts = Object.values(compose.services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));
    expect(new Set(allPorts).size).toBe(allPorts.length);
  });

  it('builds and mounts only what exists in the repository', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.build) {
        const dockerfile = join(REPO_ROOT, svc.build.context, svc.build.dockerfile);
        expect(existsSync(dockerfile), `${name}: ${svc.build.dockerfile}`).toBe(true);
        if (svc.build.target) expect(readFileSync(dockerfile, 'utf8'), `${name}: stage ${svc.build.target}`).toMatch(new RegExp(`^FROM .* AS ${svc.build.target}$`, 'm'));
      } else {
        expect(svc.image, `${name} has an image or a build`).toMatch(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/);
      }
      for (const v of svc.volumes ?? []) {
        const [source] = v.split(':') as [string];
        if (source.startsWith('.')) expect(existsSync(join(REPO_ROOT, source)), `${name} mounts ${source}`).toBe(true);
        else expect(compose.volumes, `${name} uses volume ${source}`).toHaveProperty(source);
      }
      for (const c of svc.configs ?? []) expect(compose.configs, `${name} uses config ${c.source}`).toHaveProperty(c.source);
      for (const dep of Object.keys(svc.depends_on ?? {})) expect(compose.services, `${name} depends on ${dep}`).toHaveProperty(dep);
    }
    // The setup's command exists in the build.
    expect(existsSync(join(REPO_ROOT, 'src', 'cli', 'compose-setup.ts'))).toBe(true);
  });

  it('gives the authz server and the executor configs their own loaders accept', () => {
    const authz = parseAuthzConfig(compose.configs.authz?.content as string, '/etc/toolgate/authz.yaml');
    expect(authz.policy).toMatchObject({ engine: 'embedded', bundle: { url: 'http://bundle-server/bundles/toolgate.tar.gz' } });
    expect(authz.catalog).toBe('/app/src/catalog/tools.yaml');
    const executor = parseExecutorConfig(compose.configs.executor?.content as string, '/etc/toolgate/executor.yaml');
    expect(executor.runner.kind).toBe('local');
    // The bundle the authz server polls is the one bundle-build writes and bundle-server serves.
    expect(compose.services['bundle-build']?.command).toEqual(expect.arrayContaining(['/bundles/toolgate.tar.gz']));
    // One decision key, written by setup into a volume only the authz server and the executor mount.
    expect(authz.decision_key_file).toBe('/etc/toolgate/decision-key/decision.key');
    expect(executor.decision_key_file).toBe(authz.decision_key_file);
    expect(compose.services.setup?.command).toEqual(expect.arrayContaining(['--decision-key', '/decision-key/decision.key']));
    const mounting = Object.entries(compose.services).filter(([, s]) => (s.volumes ?? []).some((v) => v.startsWith('decision-key:'))).map(([n]) => n);
    expect(mounting.sort()).toEqual(['authz', 'executor', 'setup']);
  });

  it('makes the hop from Envoy to the authz server mutual TLS: the authz server answers only Envoy\'s certificate', () => {
    const authz = parseAuthzConfig(compose.configs.authz?.content as string, '/etc/toolgate/authz.yaml');
    expect(authz.grpc?.tls).toEqual({
      cert_file: '/etc/toolgate/internal-tls/authz.pem',
      key_file: '/etc/toolgate/internal-tls/authz-key.pem',
      client_ca_file: '/etc/toolgate/internal-tls/ca.pem',
      client_names: [ENVOY_CLIENT_ID],
    });
    expect(compose.services.setup?.command).toEqual(expect.arrayContaining(['--internal-tls', '/internal-ca', '--authz-tls', '/authz-tls']));
    const mounting = (volume: string): string[] => Object.entries(compose.services).filter(([, s]) => (s.volumes ?? []).some((v) => v.startsWith(`${volume}:`))).map(([n]) => n).sort();
    // The authz server's key: setup and the authz server only. The internal CA's key: setup only.
    expect(mounting('authz-tls')).toEqual(['authz', 'setup']);
    expect(mounting('internal-ca')).toEqual(['setup']);
    expect(compose.services.authz?.volumes).toContain('authz-tls:/etc/toolgate/internal-tls:ro');
  });

  it('points every component at the collector, and Prometheus at every /metrics', () => {
    for (const svc of ['authz', 'executor']) expect(compose.services[svc]?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4317');
    const collectorConfig = join(REPO_ROOT, 'helm', 'toolgate', 'files', 'otel-collector.yaml');
    expect(compose.services['otel-collector']?.volumes).toContain('./helm/toolgate/files/otel-collector.yaml:/etc/otelcol/collector.yaml:ro');
    const collector = parseYaml(readFileSync(collectorConfig, 'utf8')) as { service: { pipelines: Record<string, { exporters: string[] }> } };
    expect(collector.service.pipelines.traces?.exporters).toEqual(['otlp/traces']);
    expect(compose.services['otel-collector']?.environment?.TRACES_BACKEND_ENDPOINT).toBe('jaeger:4317');
    const prom = parseYaml(compose.configs.prometheus?.content as string) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    expect(targets).toEqual(['authz:9464', 'executor:9465', 'otel-collector:8889']);
    for (const t of targets) expect(compose.services).toHaveProperty(t.split(':')[0] as string);
  });
});
