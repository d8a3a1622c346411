import type { JsonObject } from '../input/envoy-input.js';
import { wholeInputJson, type EncodedInput } from '../input/input-json.js';
import { performance } from 'node:perf_hooks';
import { PolicyError, type EvaluationBounds, type PolicyEngine, type PolicyEvaluation } from './policy-engine.js';

export interface RemoteEngineOptions {
  /** OPA's base URL, e.g. http://127.0.0.1:8181 */
  url: string;
  decisionPath: string;
  timeoutMs: number;
  /** Optional bearer token for OPA's `--authentication=token`. */
  token?: string;
  /** Ask OPA for strict builtin errors (as the embedded engine's option), so both engines decide alike. */
  strictBuiltinErrors?: boolean;
}

const INPUT_OPEN = Buffer.from('{"input":');
const INPUT_CLOSE = Buffer.from('}');

/**
 * Remote engine: a real OPA server over its REST data API. `provenance` makes OPA report the revisions of
 * the bundles it evaluated with, so every decision still names the policy revision that made it.
 */
export class RemoteOpaEngine implements PolicyEngine {
  readonly kind = 'remote' as const;
  readonly decisionPath: string;
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;
  private lastOk = false;

  constructor(private readonly opts: RemoteEngineOptions) {
    this.decisionPath = opts.decisionPath;
    this.endpoint = `${opts.url.replace(/\/+$/, '')}/v1/data/${opts.decisionPath}?provenance=true${opts.strictBuiltinErrors ? '&strict-builtin-errors=true' : ''}`;
    this.headers = { 'content-type': 'application/json' };
    if (opts.token) this.headers.authorization = `Bearer ${opts.token}`;
  }

  async evaluate(input: JsonObject, json?: EncodedInput, bounds: EvaluationBounds = {}): Promise<PolicyEvaluation> {
    // OPA is given what is left of the caller's deadline (never more than the configured timeout): an
    // answer that arrives after Envoy gave up would be evaluated, and logged, for nobody.
    const timeoutMs = timeoutWithin(this.opts.timeoutMs, bounds.deadline);
    if (timeoutMs <= 0) throw new PolicyError('the caller\'s deadline passed before OPA was asked');
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers,
        body: json ? Buffer.concat([INPUT_OPEN, wholeInputJson(json), INPUT_CLOSE]) : JSON.stringify({ input }),
        signal: bounds.signal ? AbortSignal.any([timeout, bounds.signal]) : timeout,
      });
      text = await res.text();
    } catch (err) {
      if (bounds.signal?.aborted) throw new PolicyError('the call was cancelled or its deadline passed while OPA evaluated');
      this.lastOk = false;
      const cause = timeout.aborted ? `no answer within ${timeoutMs} ms` : describeFetchError(err);
      throw new PolicyError(`OPA at ${this.opts.url} unreachable: ${cause}`);
    }
    if (!res.ok) {
      this.lastOk = false;
      throw new PolicyError(`OPA at ${this.opts.url} answered ${res.status}: ${text.slice(0, 500)}`);
    }
    this.lastOk = true;
    let body: { result?: unknown; provenance?: { bundles?: Record<string, { revision?: string }> } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new PolicyError(`OPA at ${this.opts.url} answered with invalid JSON`);
    }
    return { result: body.result, revision: revisionOf(body.provenance?.bundles) };
  }

  ready(): boolean {
    return this.lastOk;
  }

  /** Readiness probe: OPA's /health?bundles is 200 once its bundles are activated. */
  async probe(): Promise<boolean> {
    try {
      const res = await fetch(`${this.opts.url.replace(/\/+$/, '')}/health?bundles`, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
      this.lastOk = res.ok;
    } catch {
      this.lastOk = false;
    }
    return this.lastOk;
  }

  async close(): Promise<void> {}
}

/** The configured timeout, shortened to what is left before the deadline (a millisecond kept for the answer). */
export function timeoutWithin(configuredMs: number, deadline: number | undefined): number {
  if (deadline === undefined) return configuredMs;
  return Math.min(configuredMs, Math.floor(deadline - performance.now() - 1));
}

function revisionOf(bundles: Record<string, { revision?: string }> | undefined): string {
  if (!bundles) return '';
  const names = Object.keys(bundles).sort();
  if (names.length === 1) return bundles[names[0] as string]?.revision ?? '';
  return names.map((n) => `${n}=${bundles[n]?.revision ?? ''}`).join(',');
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? cause.message : err.message;
  }
  return String(err);
}
