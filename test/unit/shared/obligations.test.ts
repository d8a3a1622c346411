import { createHmac, createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkObligationsFor, obligationsAtLoad, obligationsToCarry, ObligationPolicyError } from '../../../src/authz/policy/obligations.js';
import { interpretResult } from '../../../src/authz/policy/decision.js';
import { parseToolCatalog } from '../../../src/catalog/tool-catalog.js';
import { obligatedTool } from '../../../src/executor/call/obligated-tool.js';
import { attest, checkAttestation, type AttestedDecision } from '../../../src/shared/decision-attestation.js';
import { applyObligations, decodeObligations, encodeObligations, parseObligations, wideningProblems } from '../../../src/shared/obligations.js';
import { cpuMillis, memoryBytes, parseQuantity } from '../../../src/shared/resource-quantity.js';

const catalog = parseToolCatalog(
  `apiVersion: toolgate.dev/v1
kind: ToolCatalog
tools:
  - name: probe
    description: probe
    action: invoke
    resource: probe
    input_schema: { type: object }
    execution: { timeout_seconds: 30, network: any, resources: { cpu: 500m, memory: 256Mi } }
`,
  'test catalog',
);
const probe = catalog.get('probe')!;

describe('Kubernetes quantities', () => {
  it('reads binary, decimal SI, milli and exponent forms as Kubernetes does', () => {
    expect(memoryBytes('64Mi')).toBe(64 * 2 ** 20);
    expect(memoryBytes('1Gi')).toBe(2 ** 30);
    expect(memoryBytes('100M')).toBe(100_000_000);
    expect(memoryBytes('128974848')).toBe(128974848);
    expect(memoryBytes('129e6')).toBe(129_000_000);
    expect(cpuMillis('250m')).toBe(250);
    expect(cpuMillis('0.5')).toBe(500);
    expect(cpuMillis('2')).toBe(2000);
    expect(cpuMillis('0.1m')).toBe(1);
    expect(parseQuantity('1E')).toBe(1e18);
  });

  it('refuses what is not a quantity', () => {
    for (const bad of ['', 'lots', '-1', '64MB', '64 Mi', '1.2.3', 'Mi', '0x10']) expect(() => parseQuantity(bad), bad).toThrow(/not a Kubernetes quantity/);
  });
});

describe('obligations: parsing', () => {
  it('reads the four known limits; an empty object is none', () => {
    expect(parseObligations({ timeout_seconds: 5, memory: '64Mi', cpu: '250m', network: 'none' })).toEqual({ timeout_seconds: 5, memory: '64Mi', cpu: '250m', network: 'none' });
    expect(parseObligations({ cpu: 0.5 })).toEqual({ cpu: '0.5' });
    expect(parseObligations({})).toBeUndefined();
  });

  it('names what is wrong: not an object, an unknown key, a bad value', () => {
    const cases: [unknown, RegExp][] = [
      [null, /must be an object/],
      [['network'], /must be an object/],
      [{ network: 'cluster' }, /network can only be "none"/],
      [{ timeout: 5 }, /unknown key "timeout"/],
      [{ timeout_seconds: 0 }, /whole number of seconds >= 1/],
      [{ timeout_seconds: 1.5 }, /whole number/],
      [{ timeout_seconds: '5' }, /whole number/],
      [{ memory: 'lots' }, /obligations.memory: "lots" is not a Kubernetes quantity/],
      [{ memory: '0' }, /more than zero/],
      [{ cpu: true }, /quantity string/],
    ];
    for (const [value, message] of cases) expect(() => parseObligations(value), JSON.stringify(value)).toThrow(message);
  });

  it('encodes canonically (sorted keys) and decodes back', () => {
    const header = encodeObligations({ network: 'none', cpu: '250m', timeout_seconds: 5 });
    expect(header).toBe('{"cpu":"250m","network":"none","timeout_seconds":5}');
    expect(decodeObligations(header)).toEqual({ cpu: '250m', network: 'none', timeout_seconds: 5 });
    expect(() => decodeObligations('{not json')).toThrow(/not JSON/);
  });
});

describe('obligations: only tighten', () => {
  it('accepts equal or tighter values, names every widening one', () => {
    expect(wideningProblems({ timeout_seconds: 30, memory: '256Mi', cpu: '0.5', network: 'none' }, probe.execution, 'probe')).toEqual([]);
    expect(wideningProblems({ timeout_seconds: 31, memory: '257Mi', cpu: '1' }, probe.execution, 'probe')).toEqual([
      'obligations.timeout_seconds 31 is longer than tool "probe"\'s timeout of 30 s',
      'obligations.memory "257Mi" is more than tool "probe"\'s memory limit of 256Mi',
      'obligations.cpu "1" is more than tool "probe"\'s CPU limit of 500m',
    ]);
  });

  it('applies the tighter of the catalog and the obligation for each limit', () => {
    expect(applyObligations(probe.execution, { timeout_seconds: 5, memory: '64Mi', cpu: '100m', network: 'none' })).toMatchObject({ timeout_seconds: 5, network: 'none', resources: { cpu: '100m', memory: '64Mi' } });
    // Wider values (a catalog that differs between the authz server and the executor) never widen.
    expect(applyObligations(probe.execution, { timeout_seconds: 300, memory: '1Gi', cpu: '4' })).toEqual(probe.execution);
    expect(applyObligations(probe.execution, undefined)).toBe(probe.execution);
  });

  it('at the authz server: a widening, unknown or malformed obligation is an error of the policy (invalid_obligations)', () => {
    expect(() => checkObligationsFor({ memory: '1Gi' }, probe, 'probe')).toThrow(ObligationPolicyError);
    expect(() => checkObligationsFor({ memory: '1Gi' }, probe, 'probe')).toThrow(/memory "1Gi" is more than .* 256Mi: obligations may only tighten/);
    expect(() => interpretResult({ allow: true, obligations: { network: 'cluster' } }, 'agent/authz')).toThrow(ObligationPolicyError);
    expect(() => interpretResult({ allowed: true, obligations: { ram: '1Mi' } }, 'envoy/authz')).toThrow(/data.envoy.authz.obligations has an unknown key "ram"/);
    // A refusal carries no obligations, and malformed ones do not turn a deny into an error.
    expect(interpretResult({ allow: false, obligations: { ram: 1 } }, 'agent/authz')).toMatchObject({ allowed: false, obligations: undefined });
    expect(interpretResult({ allow: true, obligations: { network: 'none' } }, 'agent/authz').obligations).toEqual({ network: 'none' });
    expect(interpretResult({ allow: true, obligations: {} }, 'agent/authz').obligations).toBeUndefined();
  });

  it('carries the header only for a call of a catalog tool; upstream MCP tools cannot be obliged', () => {
    expect(obligationsToCarry({ network: 'none' }, { tool: 'probe' }, catalog)).toBe('{"network":"none"}');
    expect(obligationsToCarry({ network: 'none' }, { tool: 'probe', server: 'toolgate' }, catalog)).toBe('{"network":"none"}');
    expect(obligationsToCarry({ network: 'none' }, undefined, catalog)).toBeUndefined();
    expect(() => obligationsToCarry({ network: 'none' }, { tool: 'pods_list', server: 'kubernetes' }, catalog)).toThrow(/cannot be applied to "pods_list"/);
  });

  it('before activation: checked for inputs naming a catalog tool or an upstream, skipped for the probe tool', () => {
    expect(() => obligationsAtLoad({ timeout_seconds: 600 }, { tool_call: { protocol: 'rest', tool: 'probe', arguments: {} } }, catalog)).toThrow(/longer than tool "probe"'s timeout of 30 s/);
    expect(() => obligationsAtLoad({ timeout_seconds: 600 }, { tool_call: { protocol: 'rest', tool: 'toolgate_probe', arguments: {} } }, catalog)).not.toThrow();
    expect(() => obligationsAtLoad({ network: 'none' }, { tool_call: { protocol: 'mcp', server: 'kubernetes', tool: 'pods_list' } }, catalog)).toThrow(/cannot be applied/);
  });
});

describe('obligations: at the executor', () => {
  it('runs the tool with them applied, and says when they change nothing', () => {
    const obliged = obligatedTool(probe, '{"memory":"64Mi","network":"none","timeout_seconds":2}');
    expect(obliged).toMatchObject({ ok: true, obligations: { memory: '64Mi', network: 'none', timeout_seconds: 2 }, tool: { name: 'probe', execution: { timeout_seconds: 2, network: 'none', resources: { memory: '64Mi', cpu: '500m' } } } });
    expect(obligatedTool(probe, '{"timeout_seconds":30}')).toEqual({ ok: true, tool: probe, obligations: undefined });
    expect(obligatedTool(probe, undefined)).toEqual({ ok: true, tool: probe, obligations: undefined });
    expect(obligatedTool(probe, '{"network":"any"}')).toMatchObject({ ok: false, message: expect.stringMatching(/network can only be "none"/) });
  });
});

describe('the attestation covers obligations', () => {
  const key = Buffer.alloc(32, 9);
  const decision: AttestedDecision = { decisionId: 'd-1', agentId: 'ops-bot', agentMethod: 'jwt', tool: 'probe', policyRevision: 'r-1', body: Buffer.from('{}') };
  const obliged = { ...decision, obligations: '{"network":"none"}' };

  it('without obligations, the MAC is exactly the one made before obligations existed', () => {
    const t0 = Date.UTC(2026, 10, 29, 12, 0, 0);
    const value = attest(key, decision, { nowMs: t0 });
    const iat = t0 / 1000;
    const message = JSON.stringify(['v2', 'd-1', 'ops-bot', 'jwt', 'probe', 'r-1', createHash('sha256').update('{}').digest('hex'), 'rest', iat, iat + 20]);
    expect(value).toBe(`v2.${iat}.${iat + 20}.${createHmac('sha256', key).update(message).digest('base64url')}`);
  });

  it('refuses obligations removed, added or changed on the way', () => {
    const value = attest(key, obliged);
    expect(checkAttestation(key, obliged, value).ok).toBe(true);
    expect(checkAttestation(key, decision, value)).toEqual({ ok: false, reason: 'mismatch' });
    expect(checkAttestation(key, { ...obliged, obligations: '{"network":"none","timeout_seconds":300}' }, value)).toEqual({ ok: false, reason: 'mismatch' });
    expect(checkAttestation(key, { ...obliged, obligations: '{}' }, value)).toEqual({ ok: false, reason: 'mismatch' });
    expect(checkAttestation(key, obliged, attest(key, decision))).toEqual({ ok: false, reason: 'mismatch' });
  });
});
