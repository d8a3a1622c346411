import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ensureDevCredentials } from '../../src/gateway/dev-credentials.js';
import { renderEnvoyConfig, renderTemplate } from '../../src/gateway/envoy-template.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { validateEnvoyConfig } from '../support/envoy-process.js';

const run = promisify(execFile);

describe('shipped policies and Envoy config', () => {
  it('the Rego tests in policies/ pass with the real opa', async () => {
    const { stdout } = await run(await ensureOpa(), ['test', join(REPO_ROOT, 'policies'), '-v']);
    expect(stdout).toMatch(/PASS: \d+\/\d+/);
    expect(stdout).not.toMatch(/FAIL/);
  });

  it('envoy/toolgate.yaml renders and passes envoy --mode validate; a broken one does not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-envoy-'));
    const creds = await ensureDevCredentials(join(dir, 'creds'));
    const values = {
      ADMIN_PORT: 9901,
      LISTEN_ADDRESS: '127.0.0.1',
      HTTP_PORT: 10000,
      MTLS_PORT: 10443,
      AUTHZ_HOST: '127.0.0.1',
      AUTHZ_PORT: 9191,
      AUTHZ_TIMEOUT: '0.5s',
      EXECUTOR_HOST: '127.0.0.1',
      EXECUTOR_PORT: 9292,
      MAX_REQUEST_BYTES: 2097152,
      TLS_CERT_PATH: creds.serverCertPath,
      TLS_KEY_PATH: creds.serverKeyPath,
      CLIENT_CA_PATH: creds.caCertPath,
      JWKS_PATH: creds.jwksPath,
      JWT_ISSUER: creds.jwtIssuer,
      JWT_AUDIENCE: creds.jwtAudience,
      ACCESS_LOG_PATH: join(dir, 'access.log'),
    };
    const config = await renderEnvoyConfig(values);
    const good = join(dir, 'envoy.yaml');
    await writeFile(good, config);
    await validateEnvoyConfig(good);
    expect(config).not.toContain('otel_collector');
    const traced = join(dir, 'envoy-traced.yaml');
    const tracedConfig = await renderEnvoyConfig({ ...values, TRACING: true, OTEL_COLLECTOR_HOST: 'localhost', OTEL_COLLECTOR_PORT: 4317 });
    expect(tracedConfig).toContain('envoy.tracers.opentelemetry');
    await writeFile(traced, tracedConfig);
    await validateEnvoyConfig(traced);
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, config.replace('transport_api_version: V3', 'transport_api_version: V9'));
    await expect(validateEnvoyConfig(broken)).rejects.toThrow(/rejected/);
    expect(() => renderTemplate('port: ${MISSING}', {})).toThrow(/no value for MISSING/);
    expect(() => renderTemplate('#if A\nx: 1', { A: true })).toThrow(/never closed/);
    expect(renderTemplate('a: 1\n#if A\nb: ${B}\n#endif A', { A: false })).toBe('a: 1');
  });
});
