import { describe, expect, it } from 'vitest';
import type { Approval } from '../../../../src/authz/approvals/approval.js';
import { approvalPage, escapeHtml, pendingListPage } from '../../../../src/authz/approvals/approval-page.js';

const hostile = '<script>alert(1)</script>"\'`&';
const approval: Approval = {
  id: 'apr_AAAAAAAAAAAAAAAAAAAAAA', status: 'pending', agent_id: `bot${hostile}`, agent_auth: 'jwt', tool: 'echo', arguments_digest: 'sha256:aa', policy_revision: `r${hostile}`,
  arguments: { message: hostile }, reasons: [`why ${hostile}`], protocol: 'rest', requested_by_decision: 'd', created_at: 0, expires_at: 10_000,
};

describe('approval page', () => {
  it('escapes everything the agent or the policy wrote', () => {
    for (const html of [approvalPage(approval, { now: 1, approverId: 'alice', csrfToken: 't"><x>' }), pendingListPage([approval], `alice${hostile}`)]) {
      expect(html).not.toContain('<script>alert');
      expect(html).not.toContain('"><x>');
      expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    }
    expect(escapeHtml(hostile)).toBe('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#96;&#38;');
  });

  it('offers approve/reject only while pending, and never to the agent whose call it is', () => {
    expect(approvalPage(approval, { now: 1, approverId: 'alice', csrfToken: 't' })).toContain('id="approve"');
    expect(approvalPage(approval, { now: 1, approverId: approval.agent_id, csrfToken: 't' })).not.toContain('id="approve"');
    const expired = approvalPage(approval, { now: 20_000, approverId: 'alice', csrfToken: 't' });
    expect(expired).toContain('id="status">expired<');
    expect(expired).not.toContain('id="approve"');
  });
});
