import { typeName, isObject, type EncodedValue, type Value } from './json-values.js';

/**
 * An error of a builtin, as OPA's topdown reports it: by default the call is undefined (the rule does not
 * match); with strict builtin errors the whole evaluation fails.
 */
export class BuiltinError extends Error {}

/**
 * A builtin called with something OPA handles and this engine does not reproduce (a Go template feature, an
 * x509 name constraint): the evaluation fails, strict or not, so the decision fails closed instead of
 * resting on an undefined value OPA would not have produced.
 */
export class NotImplementedError extends Error {}

/** What one evaluation shares between its builtin calls (OPA's BuiltinContext: one clock, one cache). */
export interface EvaluationContext {
  /** Nanoseconds since the epoch, read once per evaluation (`time.now_ns`, JWT `exp`/`nbf` checks). */
  nowNs(): bigint;
  /** Per-evaluation memo for builtins OPA keeps consistent within a query (`uuid.rfc4122`, `rand.intn`). */
  readonly memo: Map<string, Value>;
}

/**
 * A host builtin: arguments as JSON values; returns the result (or its pre-encoded text), or undefined when
 * OPA's result is undefined.
 */
export type BuiltinImpl = (args: Value[], ctx: EvaluationContext) => Value | EncodedValue | undefined;

export type BuiltinTable = Record<string, BuiltinImpl>;

/** OPA's operand error text ("operand 1 must be string but got number"). */
export function operandError(pos: number, want: string, got: Value | undefined): BuiltinError {
  return new BuiltinError(`operand ${pos} must be ${want} but got ${typeName(got)}`);
}

export function stringArg(args: Value[], i: number): string {
  const v = args[i];
  if (typeof v !== 'string') throw operandError(i + 1, 'string', v);
  return v;
}

export function numberArg(args: Value[], i: number): number | bigint {
  const v = args[i];
  if (typeof v !== 'number' && typeof v !== 'bigint') throw operandError(i + 1, 'number', v);
  return v;
}

export function intArg(args: Value[], i: number): number {
  const v = numberArg(args, i);
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new BuiltinError(`operand ${i + 1} must be an integer`);
    return Number(v);
  }
  if (!Number.isInteger(v)) throw new BuiltinError(`operand ${i + 1} must be integer number but got floating-point number`);
  return v;
}

export function objectArg(args: Value[], i: number): { [key: string]: Value } {
  const v = args[i];
  if (!isObject(v)) throw operandError(i + 1, 'object', v);
  return v;
}
