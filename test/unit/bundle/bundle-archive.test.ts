import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { BundleError, parseBundleArchive } from '../../../src/authz/bundle/bundle.js';

async function tarGz(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = pack();
  for (const [name, content] of Object.entries(files)) p.entry({ name }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

async function refusal(bytes: Buffer): Promise<string> {
  try {
    await parseBundleArchive(bytes);
  } catch (err) {
    if (err instanceof BundleError) return err.message;
    throw err;
  }
  throw new Error('accepted a broken bundle');
}

describe('OPA bundle archives', () => {
  it('reads the manifest, data at its paths, rego and wasm with entrypoints', async () => {
    const bundle = await parseBundleArchive(
      await tarGz({
        '/.manifest': JSON.stringify({ revision: 'r7', roots: ['agent'], wasm: [{ entrypoint: 'agent/authz', module: '/policy.wasm' }], metadata: { team: 'sec' } }),
        '/data.json': '{"authorized_agents":["a"]}',
        '/agent/limits/data.yaml': 'max: 10\n',
        '/agent/authz/policy.rego': 'package agent.authz\n',
        '/policy.wasm': Buffer.from([0, 97, 115, 109]),
      }),
    );
    expect(bundle).toMatchObject({ revision: 'r7', roots: ['agent'], metadata: { team: 'sec' }, data: { authorized_agents: ['a'], agent: { limits: { max: 10 } } } });
    expect(bundle.wasm).toEqual([{ path: 'policy.wasm', entrypoints: ['agent/authz'], bytes: expect.any(Buffer) }]);
    expect(bundle.rego.map((r) => r.path)).toEqual(['agent/authz/policy.rego']);
    expect(bundle.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses what is not a bundle or could escape it', async () => {
    expect(await refusal(Buffer.from('not gzip'))).toMatch(/not a gzip archive/);
    expect(await refusal(gzipSync(Buffer.from('gzip but not tar'.repeat(40))))).toMatch(/tar/);
    expect(await refusal(await tarGz({ '../../etc/data.json': '{}' }))).toMatch(/escapes the bundle/);
    expect(await refusal(await tarGz({ '.manifest': '{revision' }))).toMatch(/\.manifest is not valid JSON/);
    expect(await refusal(await tarGz({ 'a/data.json': '{"x":' }))).toMatch(/data file a\/data.json is invalid/);
    expect(await refusal(await tarGz({ 'data.json': '{"a":{"b":1}}', 'a/data.json': '{"b":2}' }))).toMatch(/conflict at a\/b/);
    expect(await refusal(await tarGz({ '.manifest': '{"wasm":[{"entrypoint":"x","module":"/missing.wasm"}]}' }))).toMatch(/missing\.wasm which is not in the bundle/);
  });
});
