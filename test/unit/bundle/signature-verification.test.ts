import { createHash, generateKeyPairSync } from 'node:crypto';
import { CompactSign } from 'jose';
import { describe, expect, it } from 'vitest';
import type { PolicyBundle } from '../../../src/authz/bundle/bundle.js';
import { canonicalJsonOf } from '../../../src/authz/bundle/canonical-json.js';
import { BundleSignatureError, hashFile, verifyBundleSignature, type VerificationConfig } from '../../../src/authz/bundle/signature-verification.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const FILES: Record<string, string> = {
  '.manifest': '{"revision": "r1", "roots": [""]}',
  'data.json': '{"b": 1.50, "a": ["x", {"d": true, "c": null}]}',
  'agent/authz/policy.rego': 'package agent.authz\n',
};

/** Signs the files as `opa sign` does: one JWT over the files' hashes. */
async function signed(files: Record<string, string>, opts: { key?: typeof rsa.privateKey; kid?: string; scope?: string; skip?: string } = {}): Promise<Map<string, Buffer>> {
  const entries = Object.entries(files)
    .filter(([name]) => name !== opts.skip)
    .map(([name, content]) => ({ name, hash: hashFile(name, Buffer.from(content), 'SHA-256'), algorithm: 'SHA-256' }));
  const payload: Record<string, unknown> = { files: entries };
  if (opts.scope !== undefined) payload.scope = opts.scope;
  const jwt = await new CompactSign(Buffer.from(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'RS256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .sign(opts.key ?? rsa.privateKey);
  const out = new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
  out.set('.signatures.json', Buffer.from(JSON.stringify({ signatures: [jwt] })));
  return out;
}

function bundleOf(files: Map<string, Buffer>): PolicyBundle {
  return { revision: 'r1', roots: [''], wasm: [], data: {}, rego: [], metadata: {}, digest: 'd', files };
}

const config: VerificationConfig = { keys: { sec: { key: rsaPem, algorithm: 'RS256' } }, keyId: 'sec' };

async function refusal(files: Map<string, Buffer>, c: VerificationConfig = config): Promise<string> {
  try {
    await verifyBundleSignature(bundleOf(files), c);
  } catch (err) {
    expect(err).toBeInstanceOf(BundleSignatureError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('OPA bundle signatures', () => {
  it('accepts a bundle signed over every file', async () => {
    await expect(verifyBundleSignature(bundleOf(await signed(FILES)), config)).resolves.toEqual({ keyId: 'sec', files: 3 });
  });

  it('takes the key id from the JWT header when none is configured', async () => {
    await expect(verifyBundleSignature(bundleOf(await signed(FILES, { kid: 'sec' })), { keys: config.keys })).resolves.toMatchObject({ keyId: 'sec' });
  });

  it('refuses unsigned, tampered, added, missing, wrong-key and wrong-scope bundles', async () => {
    expect(await refusal(new Map(Object.entries(FILES).map(([k, v]) => [k, Buffer.from(v)])))).toMatch(/not signed/);
    const tampered = await signed(FILES);
    tampered.set('agent/authz/policy.rego', Buffer.from('package agent.authz\nallow := true\n'));
    expect(await refusal(tampered)).toMatch(/policy.rego: digest mismatch/);
    const added = await signed(FILES);
    added.set('extra/data.json', Buffer.from('{}'));
    expect(await refusal(added)).toMatch(/extra\/data.json is not covered/);
    const missing = await signed(FILES);
    missing.delete('data.json');
    expect(await refusal(missing)).toMatch(/data.json are in the bundle signature but not in the bundle/);
    expect(await refusal(await signed(FILES, { key: other.privateKey }))).toMatch(/does not verify with key "sec"/);
    expect(await refusal(await signed(FILES, { scope: 'write' }))).toMatch(/scope mismatch/);
    expect(await refusal(await signed(FILES), { ...config, scope: 'write' })).toMatch(/scope mismatch/);
    expect(await refusal(await signed(FILES, { kid: 'nobody' }), { keys: config.keys })).toMatch(/"nobody", which is not a configured/);
  });

  it('accepts a matching scope, and reformatted JSON (hashes are over canonical JSON)', async () => {
    await expect(verifyBundleSignature(bundleOf(await signed(FILES, { scope: 'write' })), { ...config, scope: 'write' })).resolves.toBeTruthy();
    const files = await signed(FILES);
    files.set('data.json', Buffer.from('{\n  "a": ["x", {"c": null, "d": true}],\n  "b": 1.50\n}\n'));
    await expect(verifyBundleSignature(bundleOf(files), config)).resolves.toBeTruthy();
  });
});

describe('canonical JSON as OPA hashes it', () => {
  it('sorts keys, drops whitespace and keeps numbers as written', () => {
    expect(canonicalJsonOf(' {"b": 1.50, "a": [1e3, "\u2028<&>"], "c": {}} ')).toBe('{"a":[1e3,"\\u2028<&>"],"b":1.50,"c":{}}');
    expect(createHash('sha256').update(canonicalJsonOf('[1,2,3]')).digest('hex')).toBe(createHash('sha256').update('[1,2,3]').digest('hex'));
    expect(() => canonicalJsonOf('{"a":}')).toThrow();
  });
});
