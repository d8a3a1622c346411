import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitOnSignals } from '../../test/support/managed-process.js';

let current: string | undefined;

/**
 * The one temporary directory of a bench run (credentials, bundles, bodies, h2load logs, the stacks' and
 * control planes' work directories), removed when the run ends: normally, on an error, or on SIGINT/SIGTERM
 * (exitOnSignals turns those into an exit, after which the processes the run started are killed first, by
 * managed-process's own exit handler, registered before this one). TMPDIR points into it, so everything that
 * asks os.tmpdir() (here and in the processes the run starts) lands there too, as in the tests'
 * test/support/test-run-tmpdir.ts. TOOLGATE_KEEP_BENCH_TMP=1 keeps it (its path is printed).
 */
export function benchRunDir(bench: string): string {
  if (current) return current;
  const dir = mkdtempSync(join(tmpdir(), `toolgate-bench-${bench}-`));
  current = dir;
  process.env.TMPDIR = dir;
  exitOnSignals();
  process.on('exit', () => {
    if (process.env.TOOLGATE_KEEP_BENCH_TMP === '1') {
      process.stderr.write(`bench files kept in ${dir}\n`);
      return;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
