import { HOST_BUILTINS, NotImplementedError, reasonUnsupported, SET_AWARE, type BuiltinImpl, type EvaluationContext } from './builtins/index.js';
import { decodeRegoValue, decodeValue, EncodedValue, encodeValue, type Value } from './builtins/json-values.js';
import type { EncodedInput } from '../input/input-json.js';
import { PolicyError } from './policy-engine.js';

/** Memory ceiling per instance (64 KiB pages): room for 2 MiB bodies several times over, but bounded. */
const MEMORY = { initial: 32, maximum: 4096 };

interface BoundBuiltin {
  name: string;
  impl: BuiltinImpl;
  /** Arguments read in Rego syntax (sets stay sets) rather than JSON. */
  setAware: boolean;
}

interface PolicyExports {
  memory?: WebAssembly.Memory;
  builtins(): number;
  opa_json_dump(addr: number): number;
  opa_value_dump(addr: number): number;
  opa_value_parse(addr: number, len: number): number;
  opa_malloc(len: number): number;
  opa_json_parse(addr: number, len: number): number;
  opa_heap_ptr_set(addr: number): void;
  opa_value_add_path(base: number, path: number, value: number): number;
  opa_eval_ctx_new(): number;
  opa_eval_ctx_set_input(ctx: number, input: number): void;
  opa_eval_ctx_set_data(ctx: number, data: number): void;
  opa_eval_ctx_set_entrypoint(ctx: number, entrypoint: number): void;
  opa_eval_ctx_get_result(ctx: number): number;
  eval(ctx: number): number;
  opa_wasm_abi_version?: WebAssembly.Global | number;
  opa_wasm_abi_minor_version?: WebAssembly.Global | number;
}

/** A builtin a module needs and the engine lacks, with the reason. */
export interface MissingBuiltin {
  name: string;
  reason: string;
}

export class StrictBuiltinError extends PolicyError {}

const utf8 = new TextDecoder();
const utf8Out = new TextEncoder();

/**
 * The host side of one policy.wasm instance: the import object (opa_abort, opa_println, opa_builtinN) and
 * the dispatch of host builtins. Builtin errors follow OPA: the call is undefined, or with strict builtin
 * errors the evaluation fails naming the builtin. One clock reading and one memo per evaluation.
 */
export class WasmHost implements EvaluationContext {
  readonly memory = new WebAssembly.Memory(MEMORY);
  readonly memo = new Map<string, Value>();
  private exports: PolicyExports | undefined;
  private bound: (BoundBuiltin | undefined)[] = [];
  private now: bigint | undefined;

  constructor(private readonly strictBuiltinErrors: boolean) {}

  imports(): WebAssembly.Imports {
    const call = (id: number, ...args: number[]): number => this.call(id, args);
    return {
      env: {
        memory: this.memory,
        opa_abort: (addr: number) => {
          throw new PolicyError(`policy aborted: ${this.readString(addr)}`);
        },
        opa_println: (addr: number) => {
          console.log(this.readString(addr));
        },
        opa_builtin0: (id: number, _ctx: number) => call(id),
        opa_builtin1: (id: number, _ctx: number, a: number) => call(id, a),
        opa_builtin2: (id: number, _ctx: number, a: number, b: number) => call(id, a, b),
        opa_builtin3: (id: number, _ctx: number, a: number, b: number, c: number) => call(id, a, b, c),
        opa_builtin4: (id: number, _ctx: number, a: number, b: number, c: number, d: number) => call(id, a, b, c, d),
      },
    };
  }

  /**
   * Reads the ABI version and the builtins the module declares (its `builtins` export, name -> id), binds
   * those the engine has, and returns the ABI minor version with those it lacks.
   */
  attach(instance: WebAssembly.Instance): { abiMinorVersion: number; missing: MissingBuiltin[] } {
    this.exports = instance.exports as unknown as PolicyExports;
    const abi = globalValue(this.exports.opa_wasm_abi_version);
    if (abi !== undefined && abi !== 1) throw new PolicyError(`unsupported OPA WebAssembly ABI version ${abi}`);
    const declared = JSON.parse(this.readString(this.exports.opa_json_dump(this.exports.builtins()))) as Record<string, number>;
    const missing: MissingBuiltin[] = [];
    for (const [name, id] of Object.entries(declared)) {
      const impl = HOST_BUILTINS[name];
      if (impl) this.bound[id] = { name, impl, setAware: SET_AWARE.has(name) };
      else missing.push({ name, reason: reasonUnsupported(name) });
    }
    return { abiMinorVersion: globalValue(this.exports.opa_wasm_abi_minor_version) ?? 0, missing };
  }

  /** Called before each evaluation: a new clock reading and an empty memo. */
  beginEvaluation(): void {
    this.now = undefined;
    if (this.memo.size > 0) this.memo.clear();
  }

  nowNs(): bigint {
    if (this.now === undefined) {
      // performance.timeOrigin + now() has microsecond resolution; Date.now() only milliseconds
      this.now = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
    }
    return this.now;
  }

  /**
   * Evaluates an input whose shared value (the tool arguments) is parsed once and placed at each of its
   * holes (input-json.ts), through the ABI's step-by-step calls instead of opa_eval's one-shot parse. The
   * module never changes an input value, so one value may stand at several places. `heapStart` and
   * `dataAddr` are where the loaded data ends and starts (everything above heapStart is reset each time).
   */
  evaluateShared(encoded: EncodedInput & { shared: NonNullable<EncodedInput['shared']> }, entrypoint: number, dataAddr: number, heapStart: number): unknown {
    const ex = this.exports as PolicyExports;
    ex.opa_heap_ptr_set(heapStart);
    const value = this.parseJson(encoded.shared.json, 'the tool arguments');
    const input = this.parseJson(encoded.skeleton, 'the input');
    for (const hole of encoded.shared.holes) {
      const path = this.parseJson(Buffer.from(JSON.stringify(hole.path)), 'an input path');
      if (ex.opa_value_add_path(input, path, value) !== 0) throw new PolicyError(`the tool arguments could not be placed at input.${hole.path.join('.')}`);
    }
    const ctx = ex.opa_eval_ctx_new();
    ex.opa_eval_ctx_set_input(ctx, input);
    ex.opa_eval_ctx_set_data(ctx, dataAddr);
    ex.opa_eval_ctx_set_entrypoint(ctx, entrypoint);
    ex.eval(ctx);
    return JSON.parse(this.readString(ex.opa_json_dump(ex.opa_eval_ctx_get_result(ctx))));
  }

  private parseJson(bytes: Uint8Array, what: string): number {
    const ex = this.exports as PolicyExports;
    const addr = ex.opa_malloc(bytes.length);
    new Uint8Array(this.memory.buffer, addr, bytes.length).set(bytes);
    const value = ex.opa_json_parse(addr, bytes.length);
    if (value === 0) throw new PolicyError(`the policy module could not read ${what} as JSON`);
    return value;
  }

  private call(id: number, argAddrs: number[]): number {
    const b = this.bound[id];
    const ex = this.exports as PolicyExports;
    if (!b) throw new PolicyError(`policy called builtin #${id}, which it did not declare`);
    const args: Value[] = argAddrs.map((addr) =>
      b.setAware ? decodeRegoValue(this.readString(ex.opa_value_dump(addr))) : decodeValue(this.readString(ex.opa_json_dump(addr))),
    );
    let result: Value | EncodedValue | undefined;
    try {
      result = b.impl(args, this);
    } catch (err) {
      // what OPA would answer and this engine does not reproduce fails the evaluation, strict or not
      if (err instanceof NotImplementedError) throw new StrictBuiltinError(`${b.name}: not implemented by the embedded engine: ${err.message}`);
      if (this.strictBuiltinErrors) throw new StrictBuiltinError(`${b.name}: ${err instanceof Error ? err.message : String(err)}`);
      return 0; // OPA without strict builtin errors: the call is undefined
    }
    if (result === undefined) return 0;
    return this.load(result instanceof EncodedValue ? result.text : encodeValue(result));
  }

  private load(text: string): number {
    const ex = this.exports as PolicyExports;
    // written straight into the module's memory: no intermediate Buffer
    const max = text.length * 3;
    const addr = ex.opa_malloc(max);
    const { written } = utf8Out.encodeInto(text, new Uint8Array(this.memory.buffer, addr, max));
    const value = ex.opa_value_parse(addr, written);
    if (value === 0) throw new PolicyError('builtin result could not be read by the policy');
    return value;
  }

  private readString(addr: number): string {
    const mem = new Uint8Array(this.memory.buffer);
    const end = mem.indexOf(0, addr);
    return utf8.decode(mem.subarray(addr, end < 0 ? mem.length : end));
  }
}

function globalValue(g: WebAssembly.Global | number | undefined): number | undefined {
  if (g === undefined) return undefined;
  return typeof g === 'number' ? g : (g.value as number);
}
