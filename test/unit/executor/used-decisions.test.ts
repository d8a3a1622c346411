import { describe, expect, it } from 'vitest';
import { UsedDecisions } from '../../../src/executor/call/used-decisions.js';

describe('decisions already used', () => {
  it('accepts a decision once while its attestation can still be accepted, and forgets it after', () => {
    const used = new UsedDecisions();
    const t0 = Date.UTC(2026, 10, 29, 12, 0, 0);
    const exp = t0 / 1000 + 20;
    expect(used.claim('d-1', exp, t0)).toBe(true);
    expect(used.claim('d-1', exp, t0 + 1000)).toBe(false);
    expect(used.claim('d-2', exp, t0 + 1000)).toBe(true);
    // Remembered through expiry plus the clock skew allowed (5 s), then dropped: memory stays bounded.
    expect(used.claim('d-1', exp, t0 + 25_000)).toBe(false);
    expect(used.claim('d-3', exp + 10, t0 + 25_001)).toBe(true);
    expect(used.size).toBe(1);
  });
});
