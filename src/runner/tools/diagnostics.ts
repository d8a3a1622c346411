import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { getHeapStatistics } from 'node:v8';
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

/**
 * The limits this process runs under, as seen from inside: the network interfaces it has, whether it can open
 * a TCP connection to `connect_port` on 127.0.0.1 (the host's loopback when the sandbox shares the network),
 * and V8's heap limit (the local runner sizes it from the memory limit). For tests of obligations.
 */
export const sandboxLimits: ToolImplementation = async (args) => {
  const port = Number(args.connect_port ?? 0);
  let connect = 'not tried';
  if (port > 0) {
    connect = await new Promise<string>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port, timeout: 2000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve('ETIMEDOUT');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }
  return {
    network_interfaces: Object.keys(networkInterfaces()).sort(),
    connect,
    heap_limit_mebibytes: Math.round(getHeapStatistics().heap_size_limit / 1024 / 1024),
  };
};
