import type { JsonObject } from '../input/envoy-input.js';
import { PolicyError, type PolicyEngine, type PolicyEvaluation } from './policy-engine.js';

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

  async evaluate(input: JsonObject, json?: Buffer): Promise<PolicyEvaluation> {
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers,
        body: json ? Buffer.concat([INPUT_OPEN, json, INPUT_CLOSE]) : JSON.stringify({ input }),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      this.lastOk = false;
      const cause = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : describeFetchError(err);
      throw new PolicyError(`OPA at ${this.opts.url} unreachable: ${cause}`);
    }
    const text = await res.text();
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
