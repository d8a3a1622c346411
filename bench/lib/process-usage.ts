import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) and memory of processes, read from /proc. */
export interface Usage {
  cpuSeconds: number;
  rssMiB: number;
  peakRssMiB: number;
}

const TICKS_PER_SECOND = 100;

export function usageOf(pids: number[]): Usage {
  let cpu = 0;
  let rss = 0;
  let peak = 0;
  for (const pid of pids) {
    // Fields after the command name (which may hold spaces): utime is field 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpu += (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    peak += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  }
  return { cpuSeconds: cpu, rssMiB: Math.round(rss * 10) / 10, peakRssMiB: Math.round(peak * 10) / 10 };
}
