import { describe, expect, it } from 'vitest';
import type { Approval, ApprovalBinding } from '../../../../src/authz/approvals/approval.js';
import { MemoryApprovalStore } from '../../../../src/authz/approvals/memory-approval-store.js';

const binding: ApprovalBinding = { agent_id: 'ops-bot', tool: 'echo', arguments_digest: 'sha256:aa', policy_revision: 'r1' };
const fresh = (id: string, now: number, b: ApprovalBinding = binding): Approval => ({
  ...b, id, status: 'pending', agent_auth: 'jwt', arguments: { message: 'x' }, reasons: ['r'], protocol: 'rest', requested_by_decision: 'd', created_at: now, expires_at: now + 1000,
});

describe('in-memory approvals store', () => {
  it('pending until decided, reused while pending, consumed once after approval', async () => {
    const s = new MemoryApprovalStore();
    expect(await s.claim(binding, fresh('a1', 0), 'd1', 0)).toMatchObject({ outcome: 'pending', created: true });
    expect(await s.claim(binding, fresh('a2', 10), 'd2', 10)).toMatchObject({ outcome: 'pending', created: false, approval: { id: 'a1' } });
    expect(await s.pending(10, 10)).toHaveLength(1);
    expect(await s.decide('a1', 'approved', 'alice', undefined, 20)).toMatchObject({ outcome: 'decided' });
    expect(await s.decide('a1', 'rejected', 'bob', undefined, 21)).toMatchObject({ outcome: 'already_decided' });
    expect(await s.claim(binding, fresh('a3', 30), 'd3', 30)).toMatchObject({ outcome: 'consumed', approval: { id: 'a1', status: 'used', used_by_decision: 'd3' } });
    expect(await s.claim(binding, fresh('a4', 40), 'd4', 40)).toMatchObject({ outcome: 'pending', created: true, approval: { id: 'a4' } });
  });

  it('another binding (changed arguments, another revision or agent) is another approval', async () => {
    const s = new MemoryApprovalStore();
    await s.claim(binding, fresh('a1', 0), 'd1', 0);
    await s.decide('a1', 'approved', 'alice', undefined, 1);
    for (const other of [{ arguments_digest: 'sha256:bb' }, { policy_revision: 'r2' }, { agent_id: 'other' }, { tool: 'sleep' }]) {
      const b = { ...binding, ...other };
      expect(await s.claim(b, fresh(`n-${JSON.stringify(other)}`, 2, b), 'd', 2)).toMatchObject({ outcome: 'pending', created: true });
    }
    expect(await s.claim(binding, fresh('a9', 3), 'd9', 3)).toMatchObject({ outcome: 'consumed', approval: { id: 'a1' } });
  });

  it('rejected stays rejected until it expires; expired approvals are neither decided nor used', async () => {
    const s = new MemoryApprovalStore();
    await s.claim(binding, fresh('a1', 0), 'd1', 0);
    await s.decide('a1', 'rejected', 'alice', 'no', 1);
    expect(await s.claim(binding, fresh('a2', 2), 'd2', 2)).toMatchObject({ outcome: 'rejected', approval: { id: 'a1', note: 'no' } });
    expect(await s.claim(binding, fresh('a3', 1000), 'd3', 1000)).toMatchObject({ outcome: 'pending', created: true, approval: { id: 'a3' } });
    expect(await s.decide('a3', 'approved', 'alice', undefined, 2000)).toMatchObject({ outcome: 'expired' });
    await s.claim(binding, fresh('a4', 3000), 'd4', 3000);
    await s.decide('a4', 'approved', 'alice', undefined, 3001);
    expect(await s.claim(binding, fresh('a5', 4000), 'd5', 4000)).toMatchObject({ outcome: 'pending', created: true, approval: { id: 'a5' } });
  });

  it('is bounded: old expired approvals are dropped, and at most maxEntries are kept', async () => {
    const s = new MemoryApprovalStore({ retainMs: 10, maxEntries: 3 });
    for (let i = 0; i < 10; i++) {
      const b = { ...binding, arguments_digest: `sha256:${i}` };
      await s.claim(b, fresh(`a${i}`, i, b), 'd', i);
    }
    expect((await s.pending(10, 100)).length).toBeLessThanOrEqual(4);
    expect(await s.get('a0')).toBeUndefined();
    await s.claim(binding, fresh('late', 5000), 'd', 5000);
    expect(await s.get('a9')).toBeUndefined();
  });
});
