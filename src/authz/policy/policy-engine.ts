import type { JsonObject } from '../input/envoy-input.js';
import type { EncodedInput } from '../input/input-json.js';

/** What a policy engine hands back: the raw value at the decision path and the bundle revision that produced it. */
export interface PolicyEvaluation {
  result: unknown;
  revision: string;
}

/** Any failure to produce a decision. The check service turns it into a deny (fail closed). */
export class PolicyError extends Error {}

/** What bounds one evaluation: the caller's deadline (performance.now() clock) and its cancellation. */
export interface EvaluationBounds {
  deadline?: number;
  signal?: AbortSignal;
}

/**
 * One interface, two engines: `embedded` evaluates a WebAssembly-compiled bundle in process; `remote` asks a
 * real OPA over its REST API (for policies that need builtins WebAssembly lacks).
 */
export interface PolicyEngine {
  readonly kind: 'embedded' | 'remote';
  /** The decision path, e.g. `agent/authz` (a package) or `envoy/authz/allow` (a rule). */
  readonly decisionPath: string;
  /**
   * `json` is the same input already encoded (src/authz/input/input-json.ts); engines use it as is. An
   * engine that waits (remote) stops waiting at `bounds`; one that computes in process may ignore them.
   */
  evaluate(input: JsonObject, json?: EncodedInput, bounds?: EvaluationBounds): Promise<PolicyEvaluation>;
  /** The active bundle's revision, when the engine holds one (names the policy in a policy_error). */
  revision?(): string | undefined;
  /**
   * Whether the active policy may read input.history (then the check fetches it first). Absent: the engine
   * cannot tell (a remote OPA), and history is fetched for every check unless the config says never.
   */
  readsHistory?(): boolean;
  /** True once the engine can decide (a bundle is active / the server answered). */
  ready(): boolean;
  close(): Promise<void>;
}
