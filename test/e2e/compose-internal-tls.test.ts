import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadAuthorizationClient } from '../../src/authz/grpc/proto-loading.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureEnvoy } from '../../src/toolchain/install.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { buildSeedBundle } from './stack.js';

const run = promisify(execFile);

/**
 * docker-compose's internal TLS, without a container engine: the setup service's own command (from
 * docker-compose.yml, its volumes as directories here) writes the credentials and Envoy's config; Envoy
 * validates that config (its client certificate for the authz hop included); the real authz server, started
 * with compose's own authz config (container paths mapped to those directories), answers a check over mutual
 * TLS with the certificate Envoy was given and no one else.
 */
interface Service {
  command?: string[];
  volumes?: string[];
}
const compose = parseYaml(await readFile(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; configs: Record<string, { content: string }> };

describe('docker-compose: Envoy -> authz is mutual TLS', () => {
  let root: string;
  let authz: ManagedProcess | undefined;
  let grpcPort: number;
  /** A volume's directory here: where the setup service mounts it, under root. */
  const volumeDir = (volume: string): string => {
    const mount = (compose.services.setup?.volumes ?? []).find((v) => v.startsWith(`${volume}:`));
    if (!mount) throw new Error(`setup does not mount volume ${volume}`);
    return join(root, mount.split(':')[1] as string);
  };
  /** A path inside a service's container, as a path here (through the service's volume mounts). */
  const inService = (service: string, path: string): string => {
    for (const v of compose.services[service]?.volumes ?? []) {
      const [volume, at] = v.split(':') as [string, string];
      if (path.startsWith(`${at}/`)) return join(volumeDir(volume), path.slice(at.length));
    }
    throw new Error(`${service} mounts nothing at ${path}`);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'toolgate-compose-'));
    // The setup service's command, its absolute paths under root; Envoy's paths as its volume is mounted here.
    const args = (compose.services.setup?.command ?? []).map((a) => (a.startsWith('/') ? join(root, a) : a));
    await run(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'cli', 'compose-setup.js'), ...args], { env: { ...process.env, TOOLGATE_GATEWAY_MOUNT: volumeDir('gateway') } });

    grpcPort = await freePort();
    const httpPort = await freePort();
    const config = parseYaml(compose.configs.authz?.content as string) as {
      grpc: { address: string; tls: Record<string, string | string[]> };
      http: { address: string };
      catalog: string;
      policy: { bundle: Record<string, unknown> };
      decision_key_file: string;
    };
    config.grpc.address = `127.0.0.1:${grpcPort}`;
    config.http.address = `127.0.0.1:${httpPort}`;
    for (const k of ['cert_file', 'key_file', 'client_ca_file']) config.grpc.tls[k] = inService('authz', config.grpc.tls[k] as string);
    config.decision_key_file = inService('authz', config.decision_key_file);
    config.catalog = join(REPO_ROOT, 'src', 'catalog', 'tools.yaml');
    // The bundle server is another container: the same bundle, from a file.
    config.policy.bundle = { file: await buildSeedBundle(root) };
    const configPath = join(root, 'authz.yaml');
    await writeFile(configPath, toYaml(config));
    authz = startProcess({ name: 'compose-authz', command: process.execPath, args: [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], logDir: root });
    await waitForHttp(`http://127.0.0.1:${httpPort}/healthz`, { process: authz, timeoutMs: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await authz?.stop();
  });

  it('renders an Envoy config whose authz cluster presents the client certificate setup wrote, and Envoy accepts it', async () => {
    const envoyYaml = join(volumeDir('gateway'), 'envoy.yaml');
    const config = parseYaml(await readFile(envoyYaml, 'utf8')) as { static_resources: { clusters: { name: string; transport_socket?: { typed_config: Record<string, any> } }[] } }; // eslint-disable-line @typescript-eslint/no-explicit-any -- Envoy's config, read in a test
    const cluster = config.static_resources.clusters.find((c) => c.name === 'toolgate_authz');
    const tls = cluster?.transport_socket?.typed_config;
    expect(tls?.sni).toBe('authz.toolgate.internal');
    const files = [tls?.common_tls_context.tls_certificates[0].certificate_chain.filename, tls?.common_tls_context.tls_certificates[0].private_key.filename, tls?.common_tls_context.validation_context.trusted_ca.filename] as string[];
    for (const f of files) expect(existsSync(f), f).toBe(true);
    // (Its access log is the container's stdout, which a test's child may not be able to open.)
    const checked = join(root, 'envoy-validate.yaml');
    await writeFile(checked, (await readFile(envoyYaml, 'utf8')).replaceAll('/dev/stdout', join(root, 'access.log')));
    await run(await ensureEnvoy(), ['--mode', 'validate', '-c', checked]);
    // Each side's volume holds its own key only; the CA's key stays in the setup's own volume.
    const names = async (volume: string): Promise<string[]> => readdir(volumeDir(volume), { recursive: true }) as Promise<string[]>;
    expect((await names('gateway')).filter((n) => /internal/.test(n)).sort()).toEqual(['internal', 'internal/ca.pem', 'internal/envoy-client-key.pem', 'internal/envoy-client.pem']);
    expect((await names('authz-tls')).sort()).toEqual(['authz-key.pem', 'authz.pem', 'ca.pem']);
    expect(await names('internal-ca')).toContain('internal-ca-key.pem');
    expect(compose.services.envoy?.volumes?.some((v) => v.startsWith('internal-ca:') || v.startsWith('authz-tls:'))).toBe(false);
  });

  it("the authz server started with compose's config answers Envoy's certificate, and refuses plaintext and TLS without it", async () => {
    const ca = await readFile(join(volumeDir('gateway'), 'internal', 'ca.pem'));
    const ask = (credentials: grpc.ChannelCredentials): Promise<number> => {
      const Client = loadAuthorizationClient();
      const client = new Client(`127.0.0.1:${grpcPort}`, credentials, { 'grpc.ssl_target_name_override': 'authz.toolgate.internal' }) as unknown as grpc.Client & { Check: (...a: unknown[]) => unknown };
      const request = { attributes: { request: { http: { id: 'x', method: 'POST', path: '/v1/tools/echo', host: 'gw', headers: { 'content-type': 'application/json' }, raw_body: Buffer.from('{"message":"hi"}') } }, context_extensions: { protocol: 'rest' } } };
      return new Promise((resolve) =>
        client.Check(request, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => {
          client.close();
          resolve(err ? err.code : 0);
        }),
      );
    };
    const envoyCreds = grpc.credentials.createSsl(ca, await readFile(join(volumeDir('gateway'), 'internal', 'envoy-client-key.pem')), await readFile(join(volumeDir('gateway'), 'internal', 'envoy-client.pem')));
    expect(await ask(envoyCreds)).toBe(0);
    expect(await ask(grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    expect(await ask(grpc.credentials.createSsl(ca))).toBe(grpc.status.UNAVAILABLE);
  });
});
