import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { PolicyBundle } from '../bundle/bundle.js';

/**
 * OPA's decision log masking and dropping (https://www.openpolicyagent.org/docs/management-decision-logs#masking-sensitive-data):
 * the bundle's `system.log.mask` rule, given the whole event as input, returns JSON pointers to erase
 * ("/input/tool_call/arguments") or operations ({"op": "upsert" | "remove", "path", "value"}); `system.log.drop`
 * true drops the event. For the embedded engine the bundle must compile them as extra wasm entrypoints
 * (`opa build -t wasm -e agent/authz -e system/log/mask`). Runs off the answer path, on its own instance.
 */
export interface MaskableEvent {
  input?: unknown;
  result?: unknown;
  erased?: string[];
  masked?: string[];
  [key: string]: unknown;
}

interface Loaded {
  policy: LoadedPolicy;
  mask: number | undefined;
  drop: number | undefined;
  revision: string;
}

export class DecisionLogMask {
  private loaded: Loaded | undefined;

  constructor(
    private readonly maskPath = 'system/log/mask',
    private readonly dropPath = 'system/log/drop',
  ) {}

  /** Follows the active bundle; a bundle without the rules masks and drops nothing. */
  async activate(bundle: PolicyBundle): Promise<void> {
    const module = bundle.wasm.find((m) => m.entrypoints.includes(this.maskPath) || m.entrypoints.includes(this.dropPath));
    if (!module) {
      // Rego for the mask without its wasm entrypoint would log everything it means to hide: refuse the bundle.
      const pkg = this.maskPath.slice(0, this.maskPath.lastIndexOf('/')).replaceAll('/', '.');
      if (bundle.rego.some((r) => new RegExp(`^\\s*package\\s+${pkg.replaceAll('.', '\\.')}\\s*$`, 'm').test(r.source))) {
        throw new Error(`bundle ${bundle.revision || '(no revision)'} has Rego in package ${pkg} but no wasm entrypoint ${this.maskPath}: build it with -e ${this.maskPath} so decision logs are masked`);
      }
      this.loaded = undefined;
      return;
    }
    const policy = await loadPolicy(module.bytes, { initial: 32, maximum: 4096 });
    policy.setData(bundle.data);
    const eps = policy.entrypoints as Record<string, number>;
    this.loaded = { policy, mask: eps[this.maskPath], drop: eps[this.dropPath], revision: bundle.revision };
  }

  /** True when the active bundle has a mask rule (events are then masked on a copy of their input). */
  masks(): boolean {
    return this.loaded?.mask !== undefined;
  }

  /** True when the drop rule says the event must not be logged. */
  drops(event: MaskableEvent): boolean {
    const l = this.loaded;
    if (!l || l.drop === undefined) return false;
    return firstResult(l.policy.evaluate(event, l.drop)) === true;
  }

  /** Applies the mask rule to the event in place. Throws when the rule fails: the caller must not ship it. */
  apply(event: MaskableEvent): void {
    const l = this.loaded;
    if (!l || l.mask === undefined) return;
    const ops = firstResult(l.policy.evaluate(event, l.mask));
    if (ops === undefined) return;
    if (!Array.isArray(ops)) throw new Error(`${this.maskPath} must be a set of JSON pointers or operations`);
    for (const op of ops) {
      if (typeof op === 'string') {
        if (remove(event, op)) (event.erased ??= []).push(op);
      } else if (op !== null && typeof op === 'object') {
        const o = op as { op?: unknown; path?: unknown; value?: unknown };
        if (typeof o.path !== 'string') continue;
        if (o.op === 'upsert') {
          if (upsert(event, o.path, o.value)) (event.masked ??= []).push(o.path);
        } else if (remove(event, o.path)) (event.erased ??= []).push(o.path);
      }
    }
  }
}

function firstResult(resultSet: unknown): unknown {
  return Array.isArray(resultSet) ? (resultSet[0] as { result?: unknown } | undefined)?.result : undefined;
}

/** Only the event's input and result may be masked (as in OPA). */
function segmentsOf(pointer: string): string[] | undefined {
  if (!/^\/(input|result)(\/|$)/.test(pointer)) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function parentOf(root: Record<string, unknown>, segments: string[], create: boolean): Record<string, unknown> | unknown[] | undefined {
  let cur: unknown = root;
  for (const s of segments.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const c = cur as Record<string, unknown>;
    if (c[s] === undefined && create) c[s] = {};
    cur = c[s];
  }
  return cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>) : undefined;
}

function remove(event: MaskableEvent, pointer: string): boolean {
  const segments = segmentsOf(pointer);
  if (!segments) return false;
  const parent = parentOf(event, segments, false);
  const last = segments[segments.length - 1] as string;
  if (!parent) return false;
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) return false;
    parent.splice(i, 1);
    return true;
  }
  if (!(last in parent)) return false;
  delete parent[last];
  return true;
}

function upsert(event: MaskableEvent, pointer: string, value: unknown): boolean {
  const segments = segmentsOf(pointer);
  if (!segments || segments.length < 2) return false;
  const parent = parentOf(event, segments, true);
  if (!parent || Array.isArray(parent)) return false;
  parent[segments[segments.length - 1] as string] = value;
  return true;
}
