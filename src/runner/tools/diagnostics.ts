import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ToolImplementation } from './tool.js';

/**
 * Tools that look at the sandbox itself, for operators checking what their cluster enforces (and for the
 * tests that show it): not in the default catalog.
 */

/** The confinement as seen from inside: identity, capabilities, seccomp, whether / is writable, what is visible. */
export const sandboxInfo: ToolImplementation = async () => {
  const status = Object.fromEntries(
    readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .map((l) => l.split(':\t'))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k, (v as string).trim()]),
  ) as Record<string, string>;
  let rootWritable = true;
  try {
    writeFileSync('/.toolgate-probe', 'x');
  } catch (err) {
    rootWritable = (err as NodeJS.ErrnoException).code !== 'EROFS';
  }
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir).filter((f) => !f.startsWith('..')).sort();
    } catch {
      return [];
    }
  };
  return {
    /** The pod's name: which pod served the call. */
    hostname: hostname(),
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    groups: process.getgroups?.(),
    capabilities: { effective: status.CapEff, permitted: status.CapPrm, bounding: status.CapBnd, ambient: status.CapAmb },
    /** 2: a seccomp filter is in force (RuntimeDefault); 0: none. */
    seccomp: Number(status.Seccomp),
    no_new_privs: status.NoNewPrivs === '1',
    root_writable: rootWritable,
    /** Processes this container can see (its own pid namespace). */
    visible_pids: list('/proc').filter((p) => /^\d+$/.test(p)).map(Number),
    call_files: list('/var/run/toolgate/call'),
    service_account_files: list('/var/run/secrets/kubernetes.io/serviceaccount'),
  };
};

/** Allocates and touches `mebibytes` MiB, then holds it for `hold_seconds`: a tool that exceeds its memory limit. */
export const allocateMemory: ToolImplementation = async (args) => {
  const mebibytes = Number(args.mebibytes ?? 0);
  const held: Buffer[] = [];
  for (let i = 0; i < mebibytes; i++) held.push(Buffer.alloc(1024 * 1024, 1));
  await new Promise((r) => setTimeout(r, Number(args.hold_seconds ?? 0) * 1000));
  return { allocated_mebibytes: held.length };
};
