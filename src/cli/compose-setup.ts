import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { ensureDevCredentials, issueAgentCertificate, signAgentJwt } from '../gateway/dev-credentials.js';
import { renderEnvoyConfig } from '../gateway/envoy-template.js';
import { ensureInternalCredentials, envoyAuthzTlsValues } from '../gateway/internal-credentials.js';

/**
 * docker-compose's one-shot setup: development credentials (agent CA, Envoy's server certificate, a JWT
 * issuer with its JWKS, an `ops-bot` client certificate and token) and Envoy's config rendered from
 * envoy/toolgate.yaml for the compose network, all written to a shared volume. Idempotent: existing
 * credentials are kept.
 *
 *   node dist/src/cli/compose-setup.js --out /gateway [--decision-key /decision-key/decision.key]
 *     [--internal-tls /internal-ca --authz-tls /authz-tls]
 *
 * The decision key (shared by the authz server and the executor) goes to its own volume, which Envoy does
 * not mount. With --internal-tls, the hop from Envoy to the authz server is mutual TLS, as in the chart and
 * `npm run gateway` (src/gateway/internal-credentials.ts): the internal CA and everything it issued stay in
 * the --internal-tls volume (only this setup mounts it); Envoy's client certificate and the CA certificate
 * go to Envoy's volume (internal/), the authz server's certificate and the CA certificate to --authz-tls,
 * which only the authz server mounts.
 */
async function main(): Promise<void> {
  const i = process.argv.indexOf('--out');
  const out = i === -1 ? '/gateway' : (process.argv[i + 1] as string);
  // Paths as Envoy sees them: the same volume, mounted at /etc/toolgate/gateway.
  const mountedAt = process.env.TOOLGATE_GATEWAY_MOUNT ?? '/etc/toolgate/gateway';
  const inEnvoy = (p: string): string => join(mountedAt, relative(out, p));
  await mkdir(out, { recursive: true });
  const creds = await ensureDevCredentials(join(out, 'creds'));
  await issueAgentCertificate(creds, 'spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
  const token = await signAgentJwt(creds, { sub: 'ops-bot' }, { expiresInSeconds: 7 * 24 * 3600 });
  await writeFile(join(out, 'ops-bot.jwt'), token);
  const internal = await internalTls(out, inEnvoy);
  const envoy = await renderEnvoyConfig({
    ADMIN_PORT: 9901,
    LISTEN_ADDRESS: '0.0.0.0',
    HTTP_PORT: 8080,
    MTLS_PORT: 8443,
    AUTHZ_HOST: 'authz',
    AUTHZ_PORT: 9191,
    AUTHZ_TIMEOUT: '0.5s',
    EXECUTOR_HOST: 'executor',
    EXECUTOR_PORT: 9292,
    MAX_REQUEST_BYTES: 2 * 1024 * 1024,
    TLS_CERT_PATH: inEnvoy(creds.serverCertPath),
    TLS_KEY_PATH: inEnvoy(creds.serverKeyPath),
    CLIENT_CA_PATH: inEnvoy(creds.caCertPath),
    JWKS_PATH: inEnvoy(creds.jwksPath),
    JWT_ISSUER: creds.jwtIssuer,
    JWT_AUDIENCE: creds.jwtAudience,
    ACCESS_LOG_PATH: '/dev/stdout',
    TRACING: true,
    OTEL_COLLECTOR_HOST: 'otel-collector',
    OTEL_COLLECTOR_PORT: 4317,
    ...internal,
  });
  await writeFile(join(out, 'envoy.yaml'), envoy);
  const k = process.argv.indexOf('--decision-key');
  if (k !== -1) {
    const keyPath = process.argv[k + 1] as string;
    await mkdir(dirname(keyPath), { recursive: true });
    await copyFile(creds.decisionKeyPath, keyPath);
    // The authz server and the executor run as uid 65532; only they mount this volume.
    await chmod(keyPath, 0o644);
  }
  // Envoy runs as another user in its container: it must be able to read what it mounts.
  for (const p of [creds.serverKeyPath, join(out, 'envoy.yaml')]) await chmod(p, 0o644);
  process.stdout.write(
    [
      'toolgate compose setup done. Try a tool call:',
      `  curl -s -X POST localhost:8080/v1/tools/echo -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '{"message":"hi"}'`,
      'Traces: http://localhost:16686 (Jaeger); metrics: http://localhost:9090 (Prometheus).',
      '',
    ].join('\n'),
  );
}

/**
 * The internal hop's credentials (--internal-tls STATE --authz-tls DIR): issued once in STATE, copied to where
 * each side reads them; Envoy's template values, or none without --internal-tls (plaintext hop).
 */
async function internalTls(out: string, inEnvoy: (p: string) => string): Promise<ReturnType<typeof envoyAuthzTlsValues> | Record<string, never>> {
  const state = argument('--internal-tls');
  if (state === undefined) return {};
  const authzDir = argument('--authz-tls');
  if (authzDir === undefined) throw new Error('--internal-tls needs --authz-tls (where the authz server reads its certificate)');
  const issued = await ensureInternalCredentials(state);
  const envoyDir = join(out, 'internal');
  await mkdir(envoyDir, { recursive: true });
  await mkdir(authzDir, { recursive: true });
  const place = async (from: string, dir: string, name: string): Promise<string> => {
    const to = join(dir, name);
    await copyFile(from, to);
    // Envoy (uid 101) and the authz server (uid 65532) each read their own volume; nothing else mounts it.
    await chmod(to, 0o644);
    return to;
  };
  await place(issued.caCertPath, authzDir, 'ca.pem');
  await place(issued.authzCertPath, authzDir, 'authz.pem');
  await place(issued.authzKeyPath, authzDir, 'authz-key.pem');
  const forEnvoy = {
    ...issued,
    caCertPath: await place(issued.caCertPath, envoyDir, 'ca.pem'),
    envoyCertPath: await place(issued.envoyCertPath, envoyDir, 'envoy-client.pem'),
    envoyKeyPath: await place(issued.envoyKeyPath, envoyDir, 'envoy-client-key.pem'),
  };
  return envoyAuthzTlsValues({ ...forEnvoy, caCertPath: inEnvoy(forEnvoy.caCertPath), envoyCertPath: inEnvoy(forEnvoy.envoyCertPath), envoyKeyPath: inEnvoy(forEnvoy.envoyKeyPath) });
}

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i === -1) return undefined;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a path`);
  return value;
}

main().catch((err: unknown) => {
  process.stderr.write(`compose setup failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
