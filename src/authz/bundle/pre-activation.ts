import type { JsonObject } from '../input/envoy-input.js';
import type { PolicyBundle } from './bundle.js';

/**
 * A bundle must decide before it decides anything for real. A bundle can load and still fail on every
 * evaluation (a conflicting complete rule, a decision path that is undefined): activating it would turn every
 * call into `policy_error`, and caching it as "last good" would make a restart come back broken. So a candidate
 * is loaded into its own engine instance and evaluated on
 *  - the examples the bundle ships (`data.toolgate.examples`: a list of `{name?, input, allowed?}`; when
 *    `allowed` is given the decision must match it, like a smoke test),
 *  - inputs recorded from live traffic (that the active bundle decided without error),
 *  - a built-in probe input (so a bundle with neither is still evaluated once);
 * each must evaluate without error and yield a decision (the path must be defined), and an allow's obligations
 * must only tighten the catalog entry of the input's tool. Only then is it activated.
 */
export interface CandidateEvaluator {
  evaluate(input: JsonObject): Promise<{ result: unknown }>;
  close(): Promise<void>;
}

export interface PreActivationOptions {
  /** A fresh engine instance with the candidate loaded (never the active one). */
  load(bundle: PolicyBundle): Promise<CandidateEvaluator>;
  /**
   * Turns a raw result into allowed/denied; throws when it is undefined or malformed, or when what it obliges
   * cannot be applied to the input's tool (policy/obligations.ts).
   */
  interpret(result: unknown, input: JsonObject): { allowed: boolean };
  /** Inputs recorded from live traffic. */
  recorded?(): readonly JsonObject[];
}

/** The candidate failed to evaluate: refused like a corrupt bundle. */
export class BundleEvaluationError extends Error {}

export interface BundleExample {
  name: string;
  input: JsonObject;
  allowed: boolean | undefined;
}

/** Where examples live in a bundle's data: `data.toolgate.examples`. */
export const EXAMPLES_DATA_PATH = ['toolgate', 'examples'] as const;

/** Not a real call: exercises every complete rule that does not depend on input, and the decision path. */
export const PROBE_INPUT: JsonObject = {
  attributes: { request: { http: { method: 'POST', path: '/v1/tools/toolgate_probe', headers: {} } } },
  parsed_path: ['v1', 'tools', 'toolgate_probe'],
  parsed_query: {},
  parsed_body: {},
  agent: { id: 'toolgate-probe', method: 'jwt' },
  agent_id: 'toolgate-probe',
  tool_call: { protocol: 'rest', tool: 'toolgate_probe', arguments: {} },
};

export function bundleExamples(bundle: PolicyBundle): BundleExample[] {
  let node: unknown = bundle.data;
  for (const key of EXAMPLES_DATA_PATH) node = isObject(node) ? node[key] : undefined;
  if (node === undefined) return [];
  if (!Array.isArray(node)) throw new BundleEvaluationError(`bundle ${label(bundle)}: data.${EXAMPLES_DATA_PATH.join('.')} must be a list of {input, allowed?}`);
  return node.map((e, i) => {
    if (!isObject(e) || !isObject(e.input)) throw new BundleEvaluationError(`bundle ${label(bundle)}: example ${i} has no "input" object`);
    if (e.allowed !== undefined && typeof e.allowed !== 'boolean') throw new BundleEvaluationError(`bundle ${label(bundle)}: example ${i} "allowed" must be a boolean`);
    return { name: typeof e.name === 'string' ? e.name : `example ${i}`, input: e.input as JsonObject, allowed: e.allowed as boolean | undefined };
  });
}

/** Resolves with how many inputs were evaluated; rejects with a BundleEvaluationError naming the first failure. */
export async function evaluateBeforeActivation(bundle: PolicyBundle, opts: PreActivationOptions): Promise<number> {
  const examples = bundleExamples(bundle);
  const cases: BundleExample[] = [
    ...examples,
    ...(opts.recorded?.() ?? []).map((input, i) => ({ name: `recorded input ${i} (tool ${toolOf(input)})`, input, allowed: undefined })),
    { name: 'the probe input', input: PROBE_INPUT, allowed: undefined },
  ];
  let candidate: CandidateEvaluator;
  try {
    candidate = await opts.load(bundle);
  } catch (err) {
    throw new BundleEvaluationError(`bundle ${label(bundle)} cannot be loaded: ${message(err)}`);
  }
  try {
    for (const c of cases) {
      let allowed: boolean;
      try {
        allowed = opts.interpret((await candidate.evaluate(c.input)).result, c.input).allowed;
      } catch (err) {
        throw new BundleEvaluationError(`bundle ${label(bundle)} fails on ${c.name}: ${message(err)}`);
      }
      if (c.allowed !== undefined && allowed !== c.allowed) {
        throw new BundleEvaluationError(`bundle ${label(bundle)} decides ${c.name} ${allowed ? 'allowed' : 'denied'}, its example expects ${c.allowed ? 'allowed' : 'denied'}`);
      }
    }
  } finally {
    await candidate.close();
  }
  return cases.length;
}

/**
 * The last input per (tool, outcome) that the active bundle decided without error, bounded. Recording is a
 * map write done after the answer has left (never on the answer path).
 */
export class RecordedInputs {
  private readonly byKey = new Map<string, JsonObject>();

  constructor(private readonly max = 64) {}

  record(tool: string | undefined, allowed: boolean, input: JsonObject): void {
    const key = `${tool ?? ''}\u0000${allowed}`;
    if (this.byKey.has(key)) this.byKey.delete(key);
    else if (this.byKey.size >= this.max) this.byKey.delete(this.byKey.keys().next().value as string);
    this.byKey.set(key, input);
  }

  inputs(): JsonObject[] {
    return [...this.byKey.values()];
  }
}

function toolOf(input: JsonObject): string {
  const tc = input.tool_call;
  return isObject(tc) && typeof tc.tool === 'string' ? tc.tool : '?';
}

function label(bundle: PolicyBundle): string {
  return bundle.revision || '(no revision)';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
