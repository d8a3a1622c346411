/**
 * A warm pod asks for its call only once its own start-up has settled. Node keeps compiling and collecting
 * for a while after the runner's code is loaded, and under a CPU limit (a no-op tool's pod has 250m: 25 ms
 * per 100 ms period) that work spends the quota: measured, a pod claimed 0.3-0.5 s after it started had used
 * 80 ms of CPU and took 1.7-4 s to post a result it had in 10 ms. So the runner waits until a window passes
 * with the process almost idle, bounded so a busy node never keeps a pod from serving.
 */
export interface SettleOptions {
  /** Length of one measurement window. */
  windowMs: number;
  /** CPU time (user + system, all threads) below which a window counts as idle. */
  idleCpuMs: number;
  /** Give up waiting after this long: the pod is offered anyway. */
  maxWaitMs: number;
}

export const WARM_POD_SETTLE: SettleOptions = { windowMs: 100, idleCpuMs: 3, maxWaitMs: 3000 };

/** Resolves after the first idle window (or maxWaitMs); returns how long it waited. */
export async function settle(
  opts: SettleOptions = WARM_POD_SETTLE,
  cpuMs: () => number = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  },
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => number = () => performance.now(),
): Promise<number> {
  const start = now();
  for (;;) {
    const before = cpuMs();
    await sleep(opts.windowMs);
    if (cpuMs() - before < opts.idleCpuMs || now() - start >= opts.maxWaitMs) return now() - start;
  }
}
