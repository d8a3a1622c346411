import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attest, checkAttestation, loadAttestationKey, verifyAttestation, type AttestedDecision } from '../../../src/shared/decision-attestation.js';

const key = Buffer.alloc(32, 7);
const decision: AttestedDecision = { decisionId: 'd-1', agentId: 'spiffe://toolgate.local/agent/ops-bot', agentMethod: 'mtls', tool: 'echo', policyRevision: 'r-1', body: Buffer.from('{"message":"hi"}') };

describe('decision attestation', () => {
  it('verifies what the authz server attested, with the same key', () => {
    expect(verifyAttestation(key, decision, attest(key, decision))).toBe(true);
  });

  it('fails for any other decision, body, key, or a missing or malformed value', () => {
    const value = attest(key, decision);
    for (const changed of [{ decisionId: 'd-2' }, { agentId: 'other' }, { agentMethod: 'jwt' }, { tool: 'sleep' }, { policyRevision: 'r-2' }, { body: Buffer.from('{"message":"ho"}') }, { scope: 'mcp:tools/call' }]) {
      expect(verifyAttestation(key, { ...decision, ...changed }, value), JSON.stringify(changed)).toBe(false);
    }
    expect(verifyAttestation(Buffer.alloc(32, 8), decision, value)).toBe(false);
    for (const bad of [undefined, '', 'v1.', 'v1.' + value.slice(3), value.slice(0, -2), 'v2.!!!', value.replace(/^v2\.(\d+)\./, (_, iat: string) => `v2.${Number(iat) - 1}.`)]) expect(verifyAttestation(key, decision, bad), String(bad)).toBe(false);
  });

  it('scopes an attestation to the kind of message decided: REST by default, MCP by JSON-RPC method', () => {
    expect(verifyAttestation(key, { ...decision, scope: 'rest' }, attest(key, decision))).toBe(true);
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}';
    const call = { ...decision, scope: 'mcp:tools/call', body: Buffer.from(body) };
    expect(verifyAttestation(key, call, attest(key, call))).toBe(true);
    // The request body as sent: other arguments, or the same under another id, are another message.
    expect(verifyAttestation(key, { ...call, body: Buffer.from(body.replace('"a":1', '"a":2')) }, attest(key, call))).toBe(false);
    expect(verifyAttestation(key, { ...call, body: Buffer.from(body.replace('"id":1', '"id":2')) }, attest(key, call))).toBe(false);
    expect(verifyAttestation(key, { ...call, scope: 'mcp:tools/list' }, attest(key, call))).toBe(false);
  });

  it('binds a tools/list attestation to the visible tools decided, as UTF-8 bytes', () => {
    const text = 'echo,héllo \ud83d\ude00';
    const list = { ...decision, scope: 'mcp:tools/list', body: Buffer.from(text, 'utf8') };
    expect(verifyAttestation(key, list, attest(key, list))).toBe(true);
    expect(verifyAttestation(key, { ...list, body: Buffer.from(`${text},other`, 'utf8') }, attest(key, list))).toBe(false);
    expect(verifyAttestation(key, { ...list, body: Buffer.from(text, 'latin1') }, attest(key, list))).toBe(false);
  });

  it('expires: valid from its issue (with 5 s of clock skew) to its expiry, never longer than the route timeout', () => {
    const t0 = Date.UTC(2026, 10, 29, 12, 0, 0);
    const value = attest(key, decision, { nowMs: t0 });
    expect(checkAttestation(key, decision, value, t0)).toEqual({ ok: true, issuedAt: t0 / 1000, expiresAt: t0 / 1000 + 20 });
    expect(checkAttestation(key, decision, value, t0 + 25_000).ok).toBe(true);
    expect(checkAttestation(key, decision, value, t0 + 25_001)).toEqual({ ok: false, reason: 'expired' });
    expect(checkAttestation(key, decision, value, t0 - 6_000)).toEqual({ ok: false, reason: 'not_yet_valid' });
    // An issuer asking for a day gets the route timeout; the MAC covers the times, so they cannot be edited.
    const long = attest(key, decision, { nowMs: t0, ttlSeconds: 86_400 });
    expect(checkAttestation(key, decision, long, t0)).toMatchObject({ ok: true, expiresAt: t0 / 1000 + 330 });
    const stretched = value.replace(/^v2\.(\d+)\.(\d+)\./, (_, iat: string, exp: string) => `v2.${iat}.${Number(exp) + 600}.`);
    expect(checkAttestation(key, decision, stretched, t0)).toEqual({ ok: false, reason: 'mismatch' });
    expect(checkAttestation(key, decision, undefined, t0)).toEqual({ ok: false, reason: 'missing' });
  });

  it('loads a key of at least 32 bytes from a file, and says what is wrong otherwise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-key-'));
    await writeFile(join(dir, 'good'), `${'k'.repeat(64)}\n`);
    await writeFile(join(dir, 'short'), 'too short\n');
    expect((await loadAttestationKey(join(dir, 'good'))).length).toBe(64);
    await expect(loadAttestationKey(join(dir, 'short'))).rejects.toThrow(/has 9 bytes; it needs at least 32/);
    await expect(loadAttestationKey(join(dir, 'missing'))).rejects.toThrow(/cannot read the decision key/);
  });
});
