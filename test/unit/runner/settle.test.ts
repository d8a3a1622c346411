import { describe, expect, it } from 'vitest';
import { settle } from '../../../src/runner/settle.js';

/** A clock and a CPU meter the test drives: each window uses the CPU the script gives it. */
function scripted(cpuPerWindow: number[]): { cpuMs: () => number; sleep: (ms: number) => Promise<void>; now: () => number; windows: () => number } {
  let t = 0;
  let cpu = 0;
  let windows = 0;
  return {
    cpuMs: () => cpu,
    sleep: async (ms) => {
      cpu += cpuPerWindow[windows] ?? 0;
      windows++;
      t += ms;
    },
    now: () => t,
    windows: () => windows,
  };
}

describe('a warm pod settling before it asks for its call', () => {
  it('waits through busy windows and stops at the first idle one', async () => {
    const s = scripted([40, 25, 9, 1, 30]);
    expect(await settle({ windowMs: 100, idleCpuMs: 3, maxWaitMs: 3000 }, s.cpuMs, s.sleep, s.now)).toBe(400);
    expect(s.windows()).toBe(4);
  });

  it('never waits past its bound on a process that stays busy', async () => {
    const s = scripted(Array.from({ length: 100 }, () => 20));
    expect(await settle({ windowMs: 100, idleCpuMs: 3, maxWaitMs: 1000 }, s.cpuMs, s.sleep, s.now)).toBe(1000);
  });

  it('an idle process goes on after one window', async () => {
    const s = scripted([0]);
    expect(await settle({ windowMs: 100, idleCpuMs: 3, maxWaitMs: 3000 }, s.cpuMs, s.sleep, s.now)).toBe(100);
  });
});
