import { describe, expect, it } from 'vitest';
import { CallLedger } from '../../../src/executor/call/call-ledger.js';
import type { ToolOutcome } from '../../../src/executor/runners/runner.js';

function deferred(): { promise: Promise<ToolOutcome>; resolve: (o: ToolOutcome) => void } {
  let resolve!: (o: ToolOutcome) => void;
  const promise = new Promise<ToolOutcome>((r) => (resolve = r));
  return { promise, resolve };
}

const ok: ToolOutcome = { status: 'succeeded', result: 1, durationMs: 1 };

describe('call ledger', () => {
  it('runs a call once: a concurrent retry joins, a later retry replays', async () => {
    const ledger = new CallLedger({ maxInFlight: 4, retainMs: 60_000, maxRetained: 10 });
    let runs = 0;
    const d = deferred();
    const start = () => {
      runs++;
      return d.promise;
    };
    const first = ledger.admit('k', 'sha:1', start);
    const second = ledger.admit('k', 'sha:1', start);
    expect([first.kind, second.kind]).toEqual(['run', 'join']);
    d.resolve(ok);
    if (first.kind !== 'run' || second.kind !== 'join') throw new Error('unexpected');
    expect(await second.outcome).toBe(ok);
    first.release();
    second.release();
    const third = ledger.admit('k', 'sha:1', start);
    expect(third.kind).toBe('replay');
    expect(runs).toBe(1);
  });

  it('refuses a key reused with other arguments', () => {
    const ledger = new CallLedger({ maxInFlight: 4, retainMs: 60_000, maxRetained: 10 });
    ledger.admit('k', 'sha:1', () => deferred().promise);
    expect(ledger.admit('k', 'sha:2', () => deferred().promise).kind).toBe('conflict');
  });

  it('bounds calls in flight', async () => {
    const ledger = new CallLedger({ maxInFlight: 1, retainMs: 60_000, maxRetained: 10 });
    const d = deferred();
    ledger.admit('a', 'x', () => d.promise);
    expect(ledger.admit('b', 'x', () => deferred().promise)).toEqual({ kind: 'busy', retryAfterSeconds: 1, limit: 'executor' });
    d.resolve(ok);
    await d.promise;
    await new Promise((r) => setTimeout(r, 0));
    expect(ledger.admit('b', 'x', () => Promise.resolve(ok)).kind).toBe('run');
  });

  it('cancels only when every waiter has gone, and forgets cancelled calls', async () => {
    const ledger = new CallLedger({ maxInFlight: 4, retainMs: 60_000, maxRetained: 10 });
    let signal: AbortSignal | undefined;
    const start = (s: AbortSignal) => {
      signal = s;
      return new Promise<ToolOutcome>((resolve) => s.addEventListener('abort', () => resolve({ status: 'cancelled', durationMs: 1 })));
    };
    const a = ledger.admit('k', 'x', start);
    const b = ledger.admit('k', 'x', start);
    if (a.kind === 'busy' || a.kind === 'conflict' || b.kind === 'busy' || b.kind === 'conflict') throw new Error('unexpected');
    a.release();
    expect(signal?.aborted).toBe(false);
    b.release();
    expect(signal?.aborted).toBe(true);
    await a.outcome;
    expect(ledger.inFlight).toBe(0);
    expect(ledger.admit('k', 'x', () => Promise.resolve(ok)).kind).toBe('run');
  });

  it('bounds calls in flight per agent: one agent at its limit does not stop another', async () => {
    const ledger = new CallLedger({ maxInFlight: 10, retainMs: 60_000, maxRetained: 10, maxInFlightPerAgent: (agent) => (agent === 'big' ? 3 : 2) });
    const hold = deferred();
    for (const k of ['a1', 'a2']) expect(ledger.admit(k, 'x', () => hold.promise, { agentId: 'a' }).kind).toBe('run');
    expect(ledger.admit('a3', 'x', () => hold.promise, { agentId: 'a' })).toEqual({ kind: 'busy', retryAfterSeconds: 1, limit: 'agent' });
    // A retry of a running call joins it: it takes no slot.
    expect(ledger.admit('a1', 'x', () => hold.promise, { agentId: 'a' }).kind).toBe('join');
    for (const k of ['b1', 'b2', 'b3']) expect(ledger.admit(k, 'x', () => hold.promise, { agentId: 'big' }).kind).toBe('run');
    expect(ledger.admit('b4', 'x', () => hold.promise, { agentId: 'big' }).kind).toBe('busy');
    expect(ledger.admit('c1', 'x', () => hold.promise, { agentId: 'c' }).kind).toBe('run');
    expect([ledger.inFlightFor('a'), ledger.inFlightFor('big'), ledger.inFlightFor('c'), ledger.inFlight]).toEqual([2, 3, 1, 6]);
    hold.resolve(ok);
    await new Promise((r) => setTimeout(r, 0));
    expect([ledger.inFlightFor('a'), ledger.inFlight]).toEqual([0, 0]);
    expect(ledger.admit('a3', 'x', () => Promise.resolve(ok), { agentId: 'a' }).kind).toBe('run');
  });

  it('keeps no outcome for a call no retry can name (retain: false)', async () => {
    const ledger = new CallLedger({ maxInFlight: 4, retainMs: 60_000, maxRetained: 10 });
    const a = ledger.admit('decision-1', 'x', () => Promise.resolve(ok), { retain: false });
    if (a.kind !== 'run') throw new Error('unexpected');
    await a.outcome;
    a.release();
    expect(ledger.retainedBytes).toBe(0);
    expect(ledger.admit('decision-1', 'x', () => Promise.resolve(ok), { retain: false }).kind).toBe('run');
  });

  it('keeps retained outcomes within a byte budget, oldest evicted first, and replays them intact', async () => {
    const big = (n: number): ToolOutcome => ({ status: 'succeeded', result: 'x'.repeat(n), durationMs: 1 });
    const size = Buffer.byteLength(JSON.stringify(big(1000)));
    const ledger = new CallLedger({ maxInFlight: 4, retainMs: 60_000, maxRetained: 100, maxRetainedBytes: size * 2 + 10 });
    for (const k of ['k1', 'k2', 'k3']) {
      const a = ledger.admit(k, 'x', () => Promise.resolve(big(1000)));
      if (a.kind !== 'run') throw new Error('unexpected');
      await a.outcome;
      a.release();
    }
    expect(ledger.retainedBytes).toBe(size * 2);
    expect(ledger.admit('k1', 'x', () => Promise.resolve(ok)).kind).toBe('run');
    const replay = ledger.admit('k3', 'x', () => Promise.resolve(ok));
    expect(replay.kind).toBe('replay');
    if (replay.kind !== 'replay') throw new Error('unexpected');
    expect(await replay.outcome).toEqual(big(1000));
    // An outcome larger than the whole budget is answered but not kept.
    const huge = ledger.admit('k4', 'x', () => Promise.resolve(big(10_000)));
    if (huge.kind !== 'run') throw new Error('unexpected');
    expect(((await huge.outcome) as { result: string }).result).toHaveLength(10_000);
    expect(ledger.admit('k4', 'x', () => Promise.resolve(ok)).kind).toBe('run');
  });
});
