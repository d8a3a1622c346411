import { describe, expect, it } from 'vitest';
import { interpretResult } from '../../../../src/authz/policy/decision.js';
import { PolicyError } from '../../../../src/authz/policy/policy-engine.js';

describe('require_approval in the decision', () => {
  const path = 'agent/authz';

  it('true, or an object with a reason, holds an allowed call for approval', () => {
    expect(interpretResult({ allow: true, require_approval: true, reasons: ['because'] }, path).approval).toEqual({ reasons: ['because'] });
    expect(interpretResult({ allow: true, require_approval: { reason: 'prod to zero' }, reasons: ['ignored'] }, path).approval).toEqual({ reasons: ['prod to zero'] });
    expect(interpretResult({ allow: true, require_approval: { reasons: ['a', 'b'] } }, path).approval).toEqual({ reasons: ['a', 'b'] });
    expect(interpretResult({ allow: true, require_approval: true }, path).approval?.reasons[0]).toMatch(/approve/);
    expect(interpretResult({ allowed: true, require_approval: { reason: 'plugin shape' } }, path).approval).toEqual({ reasons: ['plugin shape'] });
  });

  it('absent or false: no approval; deny always wins over it', () => {
    expect(interpretResult({ allow: true }, path).approval).toBeUndefined();
    expect(interpretResult({ allow: true, require_approval: false }, path).approval).toBeUndefined();
    const denied = interpretResult({ allow: true, deny: ['no'], require_approval: true }, path);
    expect(denied.allowed).toBe(false);
    expect(denied.approval).toBeUndefined();
    expect(interpretResult({ allow: false, require_approval: true }, path).approval).toBeUndefined();
  });

  it('anything else is the policy\'s error (the check fails closed)', () => {
    for (const bad of ['yes', 1, [], null, { reason: 3 }, { reasons: 'x' }, { why: 'x' }]) {
      expect(() => interpretResult({ allow: true, require_approval: bad }, path)).toThrow(PolicyError);
    }
  });
});
