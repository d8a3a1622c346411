import type { Runner, ToolInvocation, ToolOutcome } from '../../runner.js';
import type { KubernetesJobRunner } from '../kubernetes-job-runner.js';
import type { WarmPools } from './warm-pools.js';

/**
 * The Kubernetes runner with warm pools in front: a call of a tool that opted in runs on a claimed warm pod
 * when one is ready, else (and for every other tool, and for calls with obligations) as a Job.
 *
 * Run once across replicas, warm or cold: before a pod is claimed, the call takes the same lock a cold Job
 * is, the call's Job, created held (held-call.ts). AlreadyExists: another replica (or an earlier process)
 * has the call, and this one attaches to it, wherever it runs. A held call whose pod cannot take it is
 * released to run as that very Job, so it never runs twice.
 */
/** What the pools need of the Job runner: runs, and the held lock of warm calls. */
export type HoldingJobRunner = Pick<KubernetesJobRunner, 'run' | 'close' | 'hold' | 'runHeld' | 'settleHeld' | 'storedResultOf'>;

export class PooledKubernetesRunner implements Runner {
  readonly kind = 'kubernetes' as const;

  constructor(
    private readonly jobs: HoldingJobRunner,
    private readonly pools: WarmPools,
  ) {}

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    // Warm pods were started with the catalog's settings (limits, deadline, network labels): a call whose
    // obligations tighten them runs as a Job built with its own.
    const pod = this.pools.has(inv.tool.name) && inv.obligations === undefined ? this.pools.reserve(inv.tool.name) : undefined;
    if (!pod) return this.jobs.run(inv);
    const lock = await this.jobs.hold(inv, pod);
    if (!('held' in lock)) {
      this.pools.unreserve(pod);
      // AlreadyExists: run() meets the same Job and attaches to it (or runs the call if it has gone meanwhile).
      return 'exists' in lock ? this.jobs.run(inv) : lock.outcome;
    }
    const { held } = lock;
    if (!(await this.pools.claim(inv, pod))) return this.jobs.runHeld(inv, held);
    const outcome = await this.pools.run(inv, pod, { token: held.token, job: held.ref, stored: () => this.jobs.storedResultOf(inv.callId, held) });
    if (!outcome) return this.jobs.runHeld(inv, held);
    await this.jobs.settleHeld(inv, held, outcome);
    return outcome;
  }

  async close(): Promise<void> {
    await this.pools.close();
    await this.jobs.close();
  }
}
