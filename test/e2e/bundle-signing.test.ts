import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import { extract, pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { startBundleServer, type TestBundleServer } from './bundle-server.js';
import { metricValue, waitFor, answeredRevision } from './policy-bundles.js';
import { buildSeedBundle, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/**
 * Bundles signed by a real `opa build --bundle --signing-key` (RSA and ECDSA), verified with the configured
 * keys and scope: tampered, unsigned, wrong-key and wrong-scope bundles are refused (cause logged and
 * counted) while Envoy's answers keep coming from the last good bundle.
 */
describe('signed bundles', () => {
  let stack: Stack;
  let server: TestBundleServer;
  const bundles: Record<string, Buffer> = {};

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'toolgate-signing-'));
    const pem = (k: import('node:crypto').KeyObject, type: 'pkcs8' | 'spki'): string => k.export({ type, format: 'pem' }).toString();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const intruder = generateKeyPairSync('rsa', { modulusLength: 2048 });
    for (const [name, k] of Object.entries({ rsa, ec, intruder })) {
      await writeFile(join(work, `${name}.key`), pem(k.privateKey, 'pkcs8'));
      await writeFile(join(work, `${name}.pub`), pem(k.publicKey, 'spki'));
    }
    const opaPath = await ensureOpa();
    const sign = async (revision: string, key: string, algorithm: string, keyid: string, scope: string): Promise<Buffer> => {
      const claimsFile = join(work, `${revision}.claims.json`);
      await writeFile(claimsFile, JSON.stringify({ scope, keyid }));
      const outFile = join(work, `${revision}.tar.gz`);
      await buildBundle({ opaPath, sourceDir: join(REPO_ROOT, 'policies'), outFile, revision, signing: { keyFile: join(work, `${key}.key`), algorithm, claimsFile } });
      return readFile(outFile);
    };
    bundles.rsa = await sign('rev-rsa', 'rsa', 'RS256', 'security-rsa', 'toolgate-prod');
    bundles.ec = await sign('rev-ec', 'ec', 'ES256', 'security-ec', 'toolgate-prod');
    bundles.wrongKey = await sign('rev-wrong-key', 'intruder', 'RS256', 'security-rsa', 'toolgate-prod');
    bundles.wrongScope = await sign('rev-wrong-scope', 'rsa', 'RS256', 'security-rsa', 'toolgate-dev');
    bundles.unsigned = await readFile(await buildSeedBundle(work, 'rev-unsigned'));
    bundles.tampered = await tamper(bundles.rsa, 'data.json', JSON.stringify({ authorized_agents: ['ops-bot', 'intruder-bot'] }));

    server = await startBundleServer();
    server.setBundle(bundles.rsa);
    stack = await startStack({
      engine: 'embedded',
      bundle: { url: server.url, cacheDir: join(work, 'cache') },
      editAuthzConfig: (c) => {
        c.policy.bundle.signing = {
          scope: 'toolgate-prod',
          keys: { 'security-rsa': { key_file: join(work, 'rsa.pub'), algorithm: 'RS256' }, 'security-ec': { key_file: join(work, 'ec.pub'), algorithm: 'ES256' } },
        };
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

  it('starts on an RSA-signed bundle and moves to an ECDSA-signed one', async () => {
    expect(await revision()).toEqual([200, 'rev-rsa']);
    server.setBundle(bundles.ec as Buffer);
    await waitFor(async () => (await revision())[1] === 'rev-ec', 15_000, 'rev-ec active');
  });

  for (const [name, cause] of [
    ['unsigned', /not signed/],
    ['tampered', /data.json: digest mismatch/],
    ['wrongKey', /does not verify with key "security-rsa"/],
    ['wrongScope', /scope mismatch: the bundle is signed for scope "toolgate-dev"/],
  ] as const) {
    it(`refuses the ${name} bundle, logs and counts why, and keeps deciding with rev-ec`, async () => {
      const series = 'toolgate_policy_bundle_rejections_total{reason="signature"}';
      const before = await metricValue(stack.authzHttpPort, series);
      server.setBundle(bundles[name] as Buffer);
      await waitFor(async () => (await metricValue(stack.authzHttpPort, series)) > before, 15_000, `${name} refusal counted`);
      expect(await revision()).toEqual([200, 'rev-ec']);
      const refusals = (await readFile(stack.authz.logPath, 'utf8'))
        .split('\n')
        .filter((l) => l.includes('policy bundle refused'))
        .map((l) => JSON.parse(l) as { reason: string; cause: string });
      expect(refusals.at(-1)?.reason).toBe('signature');
      expect(refusals.at(-1)?.cause).toMatch(cause);
    });
  }

  it('without verification keys, a signed bundle is refused as OPA refuses it', async () => {
    const other = await startBundleServer();
    other.setBundle(bundles.rsa as Buffer);
    try {
      const work = await mkdtemp(join(tmpdir(), 'toolgate-signing-nokeys-'));
      const configPath = join(work, 'authz.yaml');
      await writeFile(configPath, toYaml({ grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' }, catalog: join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'), policy: { engine: 'embedded', bundle: { url: other.url, cache_dir: join(work, 'cache') } } }));
      const failure = await run(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'authz', 'main.js'), '--config', configPath], { timeout: 20_000 }).then(
        () => undefined,
        (err: { code?: number; stderr?: string }) => err,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr).toMatch(/signed but no verification keys are configured/);
    } finally {
      await other.close();
    }
  });

  it('a restart with the bundle server down starts from the last good (signed and verified) bundle', async () => {
    server.setFailing(503);
    try {
      await stack.restartAuthz();
      expect(await revision()).toEqual([200, 'rev-ec']);
    } finally {
      server.setFailing(undefined);
    }
  });
});

/** The archive with one file's content replaced (its signature no longer matches). */
async function tamper(archive: Buffer, file: string, content: string): Promise<Buffer> {
  const out = pack();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const name = entry.header.name;
      out.entry({ ...entry.header, size: undefined }, name.replace(/^\/+/, '') === file ? Buffer.from(content) : Buffer.concat(chunks));
    }
    out.finalize();
  })();
  ex.end(gunzipSync(archive));
  const chunks: Buffer[] = [];
  for await (const c of out) chunks.push(c as Buffer);
  await done;
  return gzipSync(Buffer.concat(chunks));
}
