import { Counter, type Registry } from 'prom-client';

/**
 * Approvals as the operator sees them. `event`: requested (a call held, new approval), waiting (held again on
 * the pending one), consumed (a call ran on an approval), refused_rejected (a call refused: rejected),
 * approved / rejected (an approver decided), unavailable (the store could not answer: refused, fail closed).
 */
export type ApprovalEvent = 'requested' | 'waiting' | 'consumed' | 'refused_rejected' | 'approved' | 'rejected' | 'unavailable';

export class ApprovalMetrics {
  readonly events: Counter<'event'>;

  constructor(registry: Registry) {
    this.events = new Counter({
      name: 'toolgate_approvals_total',
      help: 'Approval events: requested, waiting, consumed, refused_rejected (calls); approved, rejected (approvers); unavailable (store).',
      labelNames: ['event'] as const,
      registers: [registry],
    });
  }

  count(event: ApprovalEvent): void {
    this.events.inc({ event });
  }
}
