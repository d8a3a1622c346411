import type { Approval } from './approval.js';

/** Everything interpolated into HTML goes through here: the arguments and reasons are the agent's and the policy's words. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #ddd}
th{width:11rem;color:#555;font-weight:600}pre{background:#f5f5f7;padding:.75rem;overflow:auto;white-space:pre-wrap;word-break:break-all}
.status{font-weight:700}.pending{color:#b25000}.approved,.used{color:#0a7a2f}.rejected,.expired{color:#b00020}
form{display:inline-block;margin-right:1rem}button{font-size:1rem;padding:.5rem 1.2rem;cursor:pointer}
input[type=text]{width:100%;padding:.4rem;margin:.5rem 0 1rem}.note{color:#555}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

function statusAt(a: Approval, now: number): string {
  return (a.status === 'pending' || a.status === 'approved') && now >= a.expires_at ? 'expired' : a.status;
}

/** One approval: the exact call, who asked, why, under which policy revision; approve/reject while pending. */
export function approvalPage(a: Approval, o: { now: number; approverId: string; csrfToken: string; message?: string }): string {
  const status = statusAt(a, o.now);
  const own = o.approverId === a.agent_id;
  const rows: [string, string][] = [
    ['Tool', a.tool],
    ['Agent', `${a.agent_id} (${a.agent_auth})`],
    ['Policy revision', a.policy_revision],
    ['Arguments digest', a.arguments_digest],
    ['Requested', new Date(a.created_at).toISOString()],
    ['Expires', new Date(a.expires_at).toISOString()],
    ['Requested over', a.protocol],
    ...(a.decided_by ? ([['Decided by', `${a.decided_by} at ${new Date(a.decided_at ?? 0).toISOString()}`]] as [string, string][]) : []),
    ...(a.note ? ([['Note', a.note]] as [string, string][]) : []),
    ...(a.used_at ? ([['Used', `${new Date(a.used_at).toISOString()} by decision ${a.used_by_decision ?? ''}`]] as [string, string][]) : []),
  ];
  const actions =
    status !== 'pending'
      ? ''
      : own
        ? `<p class="note">This is a call of your own identity (${escapeHtml(a.agent_id)}): another approver must decide it.</p>`
        : `<form method="post" id="approve-form"><input type="hidden" name="csrf" value="${escapeHtml(o.csrfToken)}"><input type="hidden" name="verdict" value="approve">
<label>Note (optional)<input type="text" name="note" maxlength="500"></label><button type="submit" id="approve">Approve this exact call</button></form>
<form method="post" id="reject-form"><input type="hidden" name="csrf" value="${escapeHtml(o.csrfToken)}"><input type="hidden" name="verdict" value="reject">
<label>Reason (optional)<input type="text" name="note" maxlength="500"></label><button type="submit" id="reject">Reject</button></form>`;
  return page(
    `Approval ${a.id}`,
    `<h1>Approve a tool call?</h1>
${o.message ? `<p id="message"><strong>${escapeHtml(o.message)}</strong></p>` : ''}
<p>Status: <span class="status ${status}" id="status">${status}</span></p>
<h2>Why the policy asks</h2><ul id="reasons">${a.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul>
<table>${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<h2>Arguments (exactly as the agent sent them)</h2><pre id="arguments">${escapeHtml(JSON.stringify(a.arguments, null, 2))}</pre>
<p class="note">An approval lets the agent run exactly this call once, before it expires. Any change to the arguments needs a new approval.</p>
${actions}`,
  );
}

/** The pending approvals, newest first. */
export function pendingListPage(list: Approval[], approverId: string): string {
  const items = list
    .map((a) => `<li><a href="${encodeURIComponent(a.id)}">${escapeHtml(a.tool)}</a> by ${escapeHtml(a.agent_id)}, expires ${escapeHtml(new Date(a.expires_at).toISOString())}: ${escapeHtml(a.reasons.join('; '))}</li>`)
    .join('');
  return page('Pending approvals', `<h1>Pending approvals</h1><p class="note">Signed in as ${escapeHtml(approverId)}.</p>${items ? `<ul>${items}</ul>` : '<p>None.</p>'}`);
}

export function errorPage(status: number, message: string): string {
  return page(`Error ${status}`, `<h1>${status}</h1><p id="error">${escapeHtml(message)}</p>`);
}
