import type { Counter } from 'prom-client';
import { errorMessage, type Logger } from '../../shared/logger.js';
import type { BundleSource } from '../bundle/bundle-source.js';
import type { EncodedInput } from '../input/input-json.js';
import type { PolicyBundle } from '../bundle/bundle.js';
import type { DecisionObserver } from '../check-service.js';
import type { DecisionRecord } from '../observability/decision-log.js';
import { interpretResult } from '../policy/decision.js';
import type { WasmPolicyEngine } from '../policy/wasm-engine.js';
import { directionOf, type Outcome } from './divergence.js';

/**
 * Shadow policy: a candidate bundle (its own source) evaluated on live traffic beside the active one, after
 * each answer has left, on the same encoded input. It never decides. Each divergence (allow vs deny, the same
 * outcome with other reasons, an error on either side) is logged with both results and counted by tool and
 * direction, so a security team sees what a rollout would change before it changes anything.
 */
export class ShadowPolicy {
  private startFailed: string | undefined;

  constructor(
    private readonly engine: WasmPolicyEngine,
    private readonly source: BundleSource,
    private readonly metrics: { evaluations: Counter<'outcome'>; divergences: Counter<'tool' | 'direction'> },
    private readonly log: Logger,
  ) {}

  /** Starts watching the candidate; a candidate that cannot load is logged, never fatal (it decides nothing). */
  start(verify?: (bundle: PolicyBundle) => Promise<void>): void {
    this.source
      .start(async (b) => {
        await verify?.(b);
        await this.engine.activate(b);
        this.log.info('shadow bundle active', { revision: b.revision, digest: b.digest });
      })
      .catch((err: unknown) => {
        this.startFailed = errorMessage(err);
        this.log.error('shadow bundle could not be loaded; shadow evaluation is off until it can', { cause: this.startFailed });
      });
  }

  readonly observe: DecisionObserver = (record, input, _result, json) => {
    // Only what the active policy evaluated is compared (refusals before evaluation never reach a policy).
    if (!input || (record.evaluation_ms === undefined && record.result !== 'error')) return;
    if (!this.engine.ready()) return;
    void this.compare(record, input, json);
  };

  private async compare(record: DecisionRecord, input: Record<string, unknown>, json: EncodedInput | undefined): Promise<void> {
    let candidate: { allowed: boolean; reasons: string[]; revision: string } | { error: string; revision: string | undefined };
    try {
      const e = await this.engine.evaluate(input, json);
      const d = interpretResult(e.result, this.engine.decisionPath);
      candidate = { allowed: d.allowed, reasons: d.reasons, revision: e.revision };
    } catch (err) {
      candidate = { error: errorMessage(err), revision: this.engine.revision() };
    }
    const active: Outcome = record.result === 'error' ? { error: record.cause ?? record.reasons[0] ?? 'error' } : { allowed: record.allowed, reasons: record.reasons };
    const direction = directionOf(active, candidate);
    this.metrics.evaluations.inc({ outcome: direction ? 'diverged' : 'agreed' });
    if (!direction) return;
    this.metrics.divergences.inc({ tool: record.tool ?? '', direction });
    this.log.warn('shadow divergence', {
      decision_id: record.decision_id,
      tool: record.tool,
      agent_id: record.agent_id,
      direction,
      active: record.result === 'error' ? { error: record.cause ?? record.reasons[0], revision: record.policy_revision } : { allowed: record.allowed, reasons: record.reasons, revision: record.policy_revision },
      candidate,
    });
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.engine.close();
  }

  status(): { revision: string | undefined; error: string | undefined } {
    return { revision: this.engine.revision(), error: this.startFailed ?? this.source.status().lastError };
  }
}
