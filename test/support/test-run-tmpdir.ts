import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Vitest global setup: every temporary directory a test run makes (stacks, control planes, collectors, keys)
 * goes under one directory of its own, removed when the run ends, so runs do not pile up in /tmp. Set
 * TOOLGATE_KEEP_TEST_TMP=1 to keep it (the logs of every process started are there); its path is printed.
 */
export default async function setup(): Promise<() => Promise<void>> {
  if (process.env.TOOLGATE_TEST_TMP) return async () => undefined;
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-test-run-'));
  // Read by os.tmpdir() in the test workers and the processes they start, which inherit it.
  process.env.TMPDIR = dir;
  process.env.TOOLGATE_TEST_TMP = dir;
  return async () => {
    if (process.env.TOOLGATE_KEEP_TEST_TMP === '1') {
      process.stdout.write(`test files kept in ${dir}\n`);
      return;
    }
    await rm(dir, { recursive: true, force: true });
  };
}
