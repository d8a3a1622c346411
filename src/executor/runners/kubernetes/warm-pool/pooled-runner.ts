import type { Runner, ToolInvocation, ToolOutcome } from '../../runner.js';
import type { WarmPools } from './warm-pools.js';

/**
 * The Kubernetes runner with warm pools in front: a call of a tool that opted in runs on a claimed warm pod
 * when one is ready, else (and for every other tool, and for calls with obligations) as a Job.
 */
export class PooledKubernetesRunner implements Runner {
  readonly kind = 'kubernetes' as const;

  constructor(
    private readonly jobs: Runner,
    private readonly pools: WarmPools,
  ) {}

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    // Warm pods were started with the catalog's settings (limits, deadline, network labels): a call whose
    // obligations tighten them runs as a Job built with its own.
    const pod = this.pools.has(inv.tool.name) && inv.obligations === undefined ? await this.pools.claim(inv) : undefined;
    return pod ? this.pools.run(inv, pod) : this.jobs.run(inv);
  }

  async close(): Promise<void> {
    await this.pools.close();
    await this.jobs.close();
  }
}
