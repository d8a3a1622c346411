import { Counter, Histogram, type Registry } from 'prom-client';

/** The history store as the operator sees it: round trips by operation and outcome, and how long they took. */
export class HistoryMetrics {
  readonly operations: Counter<'operation' | 'outcome'>;
  readonly duration: Histogram<'operation'>;

  constructor(registry: Registry) {
    this.operations = new Counter({
      name: 'toolgate_history_store_operations_total',
      help: 'History store operations (observe: read before a check; settle: record after it) by outcome (ok | unavailable | timeout).',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'toolgate_history_store_duration_seconds',
      help: 'Time of one history store round trip, by operation.',
      labelNames: ['operation'] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
      registers: [registry],
    });
  }
}
