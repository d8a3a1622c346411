import { Gauge, type Registry } from 'prom-client';

export type PoolStats = Record<string, { waiting: number; ready: number }>;

/** The local runner's pool as Prometheus sees it: sandboxes waiting per tool, ready or still starting. */
export function registerSandboxPoolMetrics(registry: Registry, stats: () => PoolStats): void {
  new Gauge({
    name: 'toolgate_executor_sandbox_pool_waiting',
    help: 'Pre-started local sandboxes waiting for a call, by tool and state (ready: its runner has loaded; starting: not yet).',
    labelNames: ['tool', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tool, s] of Object.entries(stats())) {
        this.set({ tool, state: 'ready' }, s.ready);
        this.set({ tool, state: 'starting' }, s.waiting - s.ready);
      }
    },
  });
}
