import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { ensureDevCredentials, issueAgentCertificate } from '../../src/gateway/dev-credentials.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { startBundleServer, type TestBundleServer } from './bundle-server.js';
import { metricValue, waitFor, answeredRevision } from './policy-bundles.js';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/**
 * An OPA configuration file as written for the OPA Envoy plugin (services with bearer credentials, client
 * TLS and a custom CA; one signed bundle with polling, its keys; the plugin's addr and path) starts toolgate
 * unchanged.
 */
describe('OPA configuration file', () => {
  let stack: Stack;
  let server: TestBundleServer;
  let work: string;
  let revB: Buffer;
  let unsigned: Buffer;
  let publicKeyPem: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-opacfg-'));
    const pki = await ensureDevCredentials(join(work, 'pki'));
    const client = await issueAgentCertificate(pki, 'spiffe://toolgate.local/authz', 'authz-client');
    await writeFile(join(work, 'bundle-token'), 's3cret-token\n');
    // Signed as OPA's bundles.<name>.signing expects: a key id, verified with the PEM key given under keys.
    const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(work, 'signing.key'), signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    publicKeyPem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const signed = async (revision: string, sourceDir: string): Promise<Buffer> => {
      const outFile = join(work, `${revision}.tar.gz`);
      await buildBundle({ opaPath: await ensureOpa(), sourceDir, outFile, revision, signing: { keyFile: join(work, 'signing.key'), keyId: 'global_key' } });
      return readFile(outFile);
    };
    const revA = await signed('rev-a', join(REPO_ROOT, 'policies'));
    revB = await signed('rev-b', await policiesWithData(work, 'policies-b', { authorized_agents: ['someone-else'] }));
    unsigned = await readFile(await buildSeedBundle(work, 'rev-unsigned'));
    server = await startBundleServer('/bundles/toolgate.tar.gz', {
      tls: { cert: await readFile(pki.serverCertPath), key: await readFile(pki.serverKeyPath), clientCa: await readFile(pki.caCertPath) },
      token: 's3cret-token',
    });
    server.setBundle(revA);
    stack = await startStack({
      engine: 'embedded',
      editAuthzConfig: (c) => {
        delete c.policy.bundle;
        const opa = {
          services: {
            acmecorp: {
              url: new URL('/bundles', server.url).toString(),
              credentials: { bearer: { token_path: join(work, 'bundle-token') }, client_tls: { cert: client.certPath, private_key: client.keyPath } },
              tls: { ca_cert: pki.caCertPath },
            },
          },
          bundles: { authz: { service: 'acmecorp', resource: 'toolgate.tar.gz', polling: { min_delay_seconds: 0.2, max_delay_seconds: 0.4 }, signing: { keyid: 'global_key' } } },
          keys: { global_key: { algorithm: 'RS256', key: publicKeyPem } },
          plugins: { envoy_ext_authz_grpc: { addr: c.grpc.address, path: 'agent/authz' } },
          persistence_directory: join(work, 'opa'),
        };
        writeFileSync(join(work, 'opa-config.yaml'), toYaml(opa));
        c.opa_config = join(work, 'opa-config.yaml');
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await server?.close();
  });

  const revision = async (): Promise<[number, string | undefined]> => {
    const res = await stack.call('/v1/tools/k8s_get_deployment', { namespace: 'staging', name: 'api' }, { jwt: await stack.jwtFor('ops-bot') });
    return [res.status, answeredRevision(res)];
  };

  it('polls the bundle over HTTPS (custom CA, client certificate, bearer token from a file) and hot-swaps it', async () => {
    expect(await revision()).toEqual([200, 'rev-a']);
    server.setBundle(revB);
    await waitFor(async () => (await revision())[1] === 'rev-b', 15_000, 'rev-b active');
    expect(await revision()).toEqual([403, 'rev-b']);
    // Cached as OPA persists bundles: persistence_directory/bundles/<name>.
    await expect(readFile(join(work, 'opa', 'bundles', 'authz', 'bundle.tar.gz'))).resolves.toBeTruthy();
  });

  it('verifies signatures with the keys and signing settings of the OPA configuration', async () => {
    const series = 'toolgate_policy_bundle_rejections_total{reason="signature"}';
    const before = await metricValue(stack.authzHttpPort, series);
    server.setBundle(unsigned);
    await waitFor(async () => (await metricValue(stack.authzHttpPort, series)) > before, 15_000, 'unsigned bundle refused');
    expect(await revision()).toEqual([403, 'rev-b']);
  });

  it('names unknown and unsupported keys in a start error', async () => {
    const opaPath = join(work, 'opa-unsupported.yaml');
    await writeFile(
      opaPath,
      toYaml({
        services: { s: { url: 'https://example.invalid', credentials: { oauth2: { token_url: 'https://example.invalid/token' } } } },
        bundles: { authz: { service: 's' } },
        discovery: { service: 's' },
        plugins: { envoy_ext_authz_grpc: { addr: ':9191', path: 'agent/authz', 'dry-run': true } },
      }),
    );
    const configPath = join(work, 'authz-unsupported.yaml');
    await writeFile(configPath, toYaml({ catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), policy: { engine: 'embedded' }, opa_config: opaPath }));
    const failure = await run(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], { timeout: 20_000 }).then(
      () => undefined,
      (err: { code?: number; stderr?: string; stdout?: string }) => err,
    );
    expect(failure?.code).toBe(1);
    const output = `${failure?.stdout ?? ''}${failure?.stderr ?? ''}`
      .split('\n')
      .filter((l) => l.includes('failed to start'))
      .map((l) => (JSON.parse(l) as { cause: string }).cause)
      .join('\n');
    expect(output).toMatch(/"discovery" is not supported by toolgate/);
    expect(output).toMatch(/"services.s.credentials.oauth2" is not supported by toolgate/);
    expect(output).toMatch(/"plugins.envoy_ext_authz_grpc.dry-run" is not supported by toolgate/);
  });
});
