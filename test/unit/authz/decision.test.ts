import { describe, expect, it } from 'vitest';
import { interpretResult } from '../../../src/authz/policy/decision.js';
import { PolicyError } from '../../../src/authz/policy/policy-engine.js';

describe('policy result interpretation', () => {
  it('takes a boolean as the OPA Envoy plugin does', () => {
    expect(interpretResult(true, 'envoy/authz/allow')).toMatchObject({ allowed: true, reasons: [] });
    expect(interpretResult(false, 'envoy/authz/allow')).toMatchObject({ allowed: false, reasons: ['data.envoy.authz.allow is false'] });
  });

  it('lets deny win over allow in a package document and carries the reasons', () => {
    expect(interpretResult({ allow: true, deny: true }, 'agent/authz')).toMatchObject({ allowed: false, reasons: ['data.agent.authz.deny matched'] });
    expect(interpretResult({ allow: true, deny: ['no secrets'], reasons: ['no secrets', 'and more'] }, 'agent/authz')).toMatchObject({
      allowed: false,
      reasons: ['no secrets', 'and more'],
    });
    expect(interpretResult({ allow: false, reasons: [] }, 'agent/authz')).toMatchObject({ allowed: false, reasons: ['no rule in data.agent.authz allows this call'] });
    expect(interpretResult({ allow: true, deny: false, reasons: ['ignored when allowed'] }, 'agent/authz')).toMatchObject({ allowed: true, reasons: [] });
    expect(interpretResult({ deny: [] }, 'agent/authz').allowed).toBe(false);
  });

  it('lets deny win in a package that also has a rule named allowed', () => {
    expect(interpretResult({ allowed: true, deny: ['no secrets'] }, 'agent/authz')).toMatchObject({ allowed: false, reasons: ['no secrets'] });
    expect(interpretResult({ allowed: true, allow: false }, 'agent/authz')).toMatchObject({ allowed: false, reasons: ['no rule in data.agent.authz allows this call'] });
    expect(interpretResult({ allowed: true, allow: true, deny: [] }, 'agent/authz').allowed).toBe(true);
    expect(interpretResult({ allowed: false, allow: true }, 'agent/authz').allowed).toBe(false);
  });

  it('reads the plugin object result: status, headers, body, metadata', () => {
    const d = interpretResult(
      {
        allowed: false,
        http_status: 451,
        headers: { 'x-a': 'b', 'x-multi': ['1', '2'] },
        body: 'nope',
        dynamic_metadata: { tier: 'gold' },
        request_headers_to_remove: ['cookie'],
        query_parameters_to_set: { a: 1 },
      },
      'envoy/authz/allow',
    );
    expect(d).toMatchObject({
      allowed: false,
      httpStatus: 451,
      headers: { 'x-a': ['b'], 'x-multi': ['1', '2'] },
      body: 'nope',
      dynamicMetadata: { tier: 'gold' },
      requestHeadersToRemove: ['cookie'],
      queryParametersToSet: { a: '1' },
    });
  });

  it('treats malformed results as errors (the caller fails closed)', () => {
    for (const bad of [undefined, null, 'yes', [true], { allow: 'yes' }, { allowed: 1 }, { allowed: true, http_status: 99 }, { allowed: true, headers: { a: 1 } }, { other: true }]) {
      expect(() => interpretResult(bad, 'agent/authz')).toThrow(PolicyError);
    }
  });
});
