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
    expect(ledger.admit('b', 'x', () => deferred().promise)).toEqual({ kind: 'busy', retryAfterSeconds: 1 });
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
});
