/**
 * What an interrupted run (Ctrl-C, SIGTERM) must still do before it exits: stop the real node and undo its
 * host changes (containerd shims, the bridge, iptables chains, ip_forward). Node's default for these signals
 * exits at once, with no clean-up at all; and the processes' own `exit` hook can only SIGKILL what it started
 * (containerd's shims, the bridge and the rules outlive that). So the first SIGINT or SIGTERM runs every
 * registered clean-up, then exits with the signal's usual status; a second one while that runs is ignored
 * (stopping half-way is what left the host dirty), and CLEANUP_LIMIT_MS bounds the whole.
 */
const cleanups = new Set<() => Promise<void>>();
const CLEANUP_LIMIT_MS = 120_000;
let installed = false;
let interrupted = false;

/** Runs `cleanup` if the process is interrupted before the returned function is called. */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  exitOnInterrupt();
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
  };
}

/** Makes SIGINT and SIGTERM exit (130, 143) after the registered clean-ups. Idempotent. */
export function exitOnInterrupt(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.on(signal, () => void interrupt(signal, code));
}

async function interrupt(signal: string, code: number): Promise<void> {
  if (interrupted) {
    process.stderr.write(`${signal} again: still cleaning up (at most ${CLEANUP_LIMIT_MS / 1000} s)\n`);
    return;
  }
  interrupted = true;
  if (cleanups.size > 0) process.stderr.write(`${signal}: stopping the real node and undoing its host changes before exiting\n`);
  setTimeout(() => process.exit(code), CLEANUP_LIMIT_MS);
  await Promise.allSettled([...cleanups].map((c) => c()));
  process.exit(code);
}
