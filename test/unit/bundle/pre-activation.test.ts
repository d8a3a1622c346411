import { describe, expect, it } from 'vitest';
import type { PolicyBundle } from '../../../src/authz/bundle/bundle.js';
import { BundleEvaluationError, bundleExamples, evaluateBeforeActivation, RecordedInputs } from '../../../src/authz/bundle/pre-activation.js';
import { withoutFilePaths } from '../../../src/authz/check-service.js';

function bundle(data: Record<string, unknown> = {}): PolicyBundle {
  return { revision: 'r2', roots: [''], wasm: [], data, rego: [], metadata: {}, digest: 'd', files: new Map() };
}

/** A stand-in for a loaded candidate (the real engine is exercised end to end): decides from input.allow. */
const evaluator = (fail?: (input: Record<string, unknown>) => boolean) => ({
  load: async () => ({
    evaluate: async (input: Record<string, unknown>) => {
      if (fail?.(input)) throw new Error('eval_conflict_error: complete rules must not produce multiple outputs');
      return { result: { allow: input.allow === true } };
    },
    close: async () => undefined,
  }),
  interpret: (r: unknown) => ({ allowed: (r as { allow: boolean }).allow }),
});

describe('pre-activation evaluation', () => {
  it('evaluates shipped examples, recorded inputs and the probe', async () => {
    const b = bundle({ toolgate: { examples: [{ input: { allow: true }, allowed: true }] } });
    await expect(evaluateBeforeActivation(b, { ...evaluator(), recorded: () => [{ allow: false }] })).resolves.toBe(3);
  });

  it('refuses a bundle that errors on any of them or contradicts an example', async () => {
    await expect(evaluateBeforeActivation(bundle(), evaluator(() => true))).rejects.toThrow(/r2 fails on the probe input: eval_conflict_error/);
    await expect(evaluateBeforeActivation(bundle(), { ...evaluator((i) => i.tool === 'x'), recorded: () => [{ tool: 'x' }] })).rejects.toThrow(BundleEvaluationError);
    const b = bundle({ toolgate: { examples: [{ name: 'reads', input: { allow: false }, allowed: true }] } });
    await expect(evaluateBeforeActivation(b, evaluator())).rejects.toThrow(/decides reads denied, its example expects allowed/);
    expect(() => bundleExamples(bundle({ toolgate: { examples: {} } }))).toThrow(/must be a list/);
  });

  it('keeps one recorded input per tool and outcome, bounded', () => {
    const r = new RecordedInputs(2);
    r.record('a', true, { n: 1 });
    r.record('a', true, { n: 2 });
    r.record('b', false, { n: 3 });
    r.record('c', true, { n: 4 });
    expect(r.inputs()).toEqual([{ n: 3 }, { n: 4 }]);
  });
});

describe('agent-facing policy errors', () => {
  it('name files without their server paths, and leave URLs alone', () => {
    expect(withoutFilePaths('policy evaluation failed: /tmp/b/policies/agent/authz/conflict.rego:3: eval_conflict_error')).toBe('policy evaluation failed: conflict.rego:3: eval_conflict_error');
    expect(withoutFilePaths('at policies/agent/authz/x.rego:1')).toBe('at x.rego:1');
    expect(withoutFilePaths('OPA at http://127.0.0.1:8181/v1/data unreachable')).toBe('OPA at http://127.0.0.1:8181/v1/data unreachable');
  });
});
