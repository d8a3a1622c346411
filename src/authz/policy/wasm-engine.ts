import { LoadedPolicy } from './opa-wasm-sdk.js';
import type { PolicyBundle } from '../bundle/bundle.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { EncodedInput } from '../input/input-json.js';
import { PolicyError, type PolicyEngine, type PolicyEvaluation } from './policy-engine.js';
import { WasmHost, type MissingBuiltin } from './wasm-host.js';
import { bundleReadsHistory } from '../history/bundle-reads-history.js';

/** The wasm instance and the revision it was built from travel together, so a decision never mixes two bundles. */
interface ActivePolicy {
  policy: LoadedPolicy;
  host: WasmHost;
  entrypoint: number;
  revision: string;
  /** Whether the module may read input.history (src/authz/history/bundle-reads-history.ts). */
  readsHistory: boolean;
}

export interface WasmEngineOptions {
  /** OPA's --strict-builtin-errors: a builtin error fails the evaluation instead of making the call undefined. */
  strictBuiltinErrors?: boolean;
}

/**
 * Embedded engine: the bundle's policy.wasm evaluated in process with @open-policy-agent/opa-wasm.
 * `activate` builds a complete new instance before swapping one reference, so in-flight and later checks
 * always see a whole bundle, and a bundle that fails to load leaves the previous one serving.
 */
export class WasmPolicyEngine implements PolicyEngine {
  readonly kind = 'embedded' as const;
  private active: ActivePolicy | undefined;

  constructor(
    readonly decisionPath: string,
    private readonly options: WasmEngineOptions = {},
  ) {}

  async activate(bundle: PolicyBundle): Promise<void> {
    const module = bundle.wasm.find((m) => m.entrypoints.includes(this.decisionPath)) ?? (bundle.wasm.length === 1 ? bundle.wasm[0] : undefined);
    if (!module) {
      const have = bundle.wasm.flatMap((m) => m.entrypoints);
      throw new PolicyError(
        bundle.wasm.length === 0
          ? `bundle ${bundle.revision || '(no revision)'} has no policy.wasm; build it with "opa build -t wasm -e ${this.decisionPath}" or use the remote engine`
          : `bundle ${bundle.revision || '(no revision)'} has no wasm entrypoint "${this.decisionPath}" (has: ${have.join(', ') || 'none'})`,
      );
    }
    // The engine builds the instance itself (not opa-wasm's loadPolicy) so that it provides the host builtins
    // and can refuse, before activation, a module that declares a builtin it does not provide.
    const host = new WasmHost(this.options.strictBuiltinErrors ?? false);
    let policy: LoadedPolicy | undefined;
    let missing: MissingBuiltin[];
    try {
      const compiled = await WebAssembly.compile(module.bytes);
      const instance = await WebAssembly.instantiate(compiled, host.imports());
      const attached = host.attach(instance);
      missing = attached.missing;
      if (missing.length === 0) {
        policy = new LoadedPolicy({ module: compiled, instance }, host.memory, attached.abiMinorVersion);
        policy.setData(bundle.data);
      }
    } catch (err) {
      throw new PolicyError(`bundle ${bundle.revision || '(no revision)'}: cannot load ${module.path}: ${describeThrown(err)}`);
    }
    if (missing.length > 0 || !policy) {
      throw new PolicyError(
        `bundle ${bundle.revision || '(no revision)'}: ${module.path} needs ${missing.length === 1 ? 'a builtin' : 'builtins'} the embedded engine does not provide: ` +
          missing.map((m) => `${m.name} (${m.reason})`).join('; '),
      );
    }
    const entrypoint = (policy.entrypoints as Record<string, number>)[this.decisionPath];
    if (entrypoint === undefined) {
      throw new PolicyError(`bundle ${bundle.revision}: ${module.path} has no entrypoint "${this.decisionPath}"`);
    }
    this.active = { policy, host, entrypoint, revision: bundle.revision, readsHistory: bundleReadsHistory(bundle) };
  }

  async evaluate(input: JsonObject, json?: EncodedInput): Promise<PolicyEvaluation> {
    const active = this.active;
    if (!active) throw new PolicyError('no policy bundle is active yet');
    let resultSet: unknown;
    active.host.beginEvaluation();
    try {
      const shared = json?.shared;
      if (json && shared) {
        const { dataAddr, dataHeapPtr } = active.policy as unknown as LoadedPolicyHeap;
        resultSet = active.host.evaluateShared({ ...json, shared }, active.entrypoint, dataAddr, dataHeapPtr);
      } else {
        // opa-wasm copies pre-encoded JSON straight into the module's memory (no stringify, no re-encode).
        resultSet = active.policy.evaluate(json ? ownArrayBuffer(json.skeleton) : input, active.entrypoint);
      }
    } catch (err) {
      throw new PolicyError(`policy evaluation failed: ${describeThrown(err)}`);
    }
    // opa-wasm returns a result set: [] when undefined, [{result}] otherwise.
    const first = Array.isArray(resultSet) ? (resultSet[0] as { result?: unknown } | undefined) : undefined;
    return { result: first?.result, revision: active.revision };
  }

  ready(): boolean {
    return this.active !== undefined;
  }

  readsHistory(): boolean {
    return this.active?.readsHistory ?? false;
  }

  revision(): string | undefined {
    return this.active?.revision;
  }

  async close(): Promise<void> {
    this.active = undefined;
  }
}

/** Where opa-wasm's LoadedPolicy keeps the loaded data (set by setData; fields of its instance, not typed). */
interface LoadedPolicyHeap {
  dataAddr: number;
  dataHeapPtr: number;
}

/** opa-wasm throws strings as well as Errors. */
function describeThrown(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The bytes as an ArrayBuffer of exactly their length: the buffer itself when it is not a slice of a pool. */
function ownArrayBuffer(b: Buffer): ArrayBuffer {
  const ab = b.buffer as ArrayBuffer;
  return b.byteOffset === 0 && b.byteLength === ab.byteLength ? ab : ab.slice(b.byteOffset, b.byteOffset + b.byteLength);
}
