import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argumentsDigest } from '../../src/shared/digest.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { launchChromium } from '../support/browser.js';
import { waitUntil } from '../support/wait-until.js';
import { buildSeedBundle, startStack, type Response, type Stack } from './stack.js';

/**
 * Approvals end to end (issue 18): through the real Envoy, the authz server holds a call the policy allows
 * only with a person's approval (REST 202, MCP URL elicitation), an approver decides on the page in a real
 * headless Chromium (or through the JSON endpoint), and the agent's retry of exactly that call runs once in
 * the real executor.
 */

// e2e only, next to the example policies: an echo whose message starts with "approve:" needs an approval
// (echo runs in the local sandbox, so "runs once" is visible in the executor's audit trail).
const E2E_RULE = `package agent.authz

import rego.v1

require_approval := {"reason": "e2e: an echo starting with approve: needs a person's approval"} if {
	input.resource == "echo"
	startswith(input.tool_call.arguments.message, "approve:")
}
`;

async function bundleWithE2eRule(dir: string): Promise<string> {
  const src = join(dir, 'policies');
  await cp(join(REPO_ROOT, 'policies'), src, { recursive: true });
  await writeFile(join(src, 'agent', 'authz', 'e2e_approvals.rego'), E2E_RULE);
  return buildSeedBundle(dir, 'approvals-e2e', src);
}

async function auditRecords(path: string | undefined): Promise<Record<string, unknown>[]> {
  const text = path ? await readFile(path, 'utf8').catch(() => '') : '';
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('approvals through Envoy', () => {
  let stack: Stack;
  let browser: Browser;
  let agentJwt: string;
  let approverJwt: string;

  const echo = (message: string): Promise<Response> => stack.call('/v1/tools/echo', { message }, { jwt: agentJwt });
  const approvalsUrl = (path = ''): string => `http://127.0.0.1:${stack.envoyHttpPort}/approvals/${path}`;
  const decideByApi = async (id: string, verdict: 'approve' | 'reject', jwt = approverJwt, note?: string): Promise<{ status: number; json: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
    const res = await fetch(approvalsUrl(id), { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ verdict, ...(note ? { note } : {}) }) });
    return { status: res.status, json: await res.json() };
  };
  const ranWith = async (message: string): Promise<number> => {
    const digest = argumentsDigest({ message });
    return (await auditRecords(stack.executorAuditPath)).filter((r) => r.kind === 'tool_call' && r.arguments_digest === digest).length;
  };

  /** The approver opens the URL the agent was given, in a real browser, and clicks a button. */
  async function decideInBrowser(url: string, button: 'approve' | 'reject', expectOnPage: string[] = []): Promise<string> {
    // As an identity-aware proxy in front of the page would: the approver's token on every request, no cookies.
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${approverJwt}` } });
    const dialogs: string[] = [];
    try {
      const page = await context.newPage();
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const res = await page.goto(url);
      expect(res?.status()).toBe(200);
      expect(await page.locator('#status').textContent()).toBe('pending');
      const text = (await page.locator('body').textContent()) ?? '';
      for (const s of expectOnPage) expect(text).toContain(s);
      await Promise.all([page.waitForLoadState('load'), page.locator(`#${button}`).click()]);
      await page.waitForSelector('#message').catch(async (err: unknown) => {
        throw new Error(`no result page after ${button}: ${String(err)}\n${await page.content()}`);
      });
      const status = (await page.locator('#status').textContent()) ?? '';
      expect(dialogs).toEqual([]);
      return status;
    } finally {
      await context.close();
    }
  }

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-approvals-'));
    [stack, browser] = await Promise.all([
      bundleWithE2eRule(dir).then((file) => startStack({ engine: 'embedded', executor: 'local', audit: true, approvals: { ttlSeconds: 600 }, bundle: { file } })),
      launchChromium(),
    ]);
    agentJwt = await stack.jwtFor('ops-bot');
    approverJwt = await stack.approverJwtFor('alice');
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('scale-to-zero in production (the example policy) is held with 202, an approval id and the page URL', async () => {
    const res = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 0 }, { jwt: agentJwt });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'pending', tool: 'k8s_scale_deployment', policy_revision: 'approvals-e2e' });
    expect(res.json.approval_id).toMatch(/^apr_[A-Za-z0-9_-]{22}$/);
    expect(res.json.url).toBe(approvalsUrl(res.json.approval_id));
    expect(res.headers.location).toBe(res.json.url);
    expect(Date.parse(res.json.expires_at) - Date.now()).toBeGreaterThan(500_000);
    expect(res.json.reasons.join(' ')).toMatch(/deployment api in production to zero replicas.*a person must approve/);
    // Asking again before anyone decided: the same pending approval, not a new one for approvers to sift through.
    const again = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 0 }, { jwt: agentJwt });
    expect(again.status).toBe(202);
    expect(again.json.approval_id).toBe(res.json.approval_id);
    // Any other scale in production stays refused outright (no approval offered).
    const two = await stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'api', replicas: 2 }, { jwt: agentJwt });
    expect(two.status).toBe(403);
    expect(two.json.error.code).toBe('policy_denied');
  });

  it('202 -> approved on the page in headless Chromium -> the retry of exactly that call runs once; another retry needs a new approval', async () => {
    const message = 'approve: restart <script>alert("x")</script> & co';
    const held = await echo(message);
    expect(held.status).toBe(202);
    expect(await ranWith(message)).toBe(0);
    // The page shows the exact call (escaped: the script tag is text, no dialog), the agent, the reasons, the revision.
    const status = await decideInBrowser(held.json.url, 'approve', [JSON.stringify(message), 'ops-bot', 'echo', 'approvals-e2e', "an echo starting with approve: needs a person's approval"]);
    expect(status).toBe('approved');

    const ran = await echo(message);
    expect(ran.status).toBe(200);
    expect(ran.json.result ?? ran.json).toMatchObject({ message });
    await waitUntil('the executor recorded the run', async () => (await ranWith(message)) === 1);

    const second = await echo(message);
    expect(second.status).toBe(202);
    expect(second.json.approval_id).not.toBe(held.json.approval_id);
    expect(await ranWith(message)).toBe(1);

    const view = await (await fetch(approvalsUrl(held.json.approval_id), { headers: { authorization: `Bearer ${approverJwt}`, accept: 'application/json' } })).json();
    expect(view).toMatchObject({ status: 'used', decided_by: 'alice', agent_id: 'ops-bot', tool: 'echo' });
    // The authz audit trail and decision log name the approval the call ran on.
    await waitUntil('the approval is in the audit trail', async () => (await auditRecords(stack.authzAuditPath)).some((r) => r.kind === 'approval_consumed' && r.approval_id === held.json.approval_id));
    const trail = await auditRecords(stack.authzAuditPath);
    expect(trail.find((r) => r.kind === 'approval_decided' && r.approval_id === held.json.approval_id)).toMatchObject({ verdict: 'approved', approver: 'alice', agent_id: 'ops-bot' });
    expect(trail.find((r) => r.kind === 'call_held_for_approval' && r.approval_id === held.json.approval_id)).toMatchObject({ code: 'approval_required', http_status: 202 });
    const consumed = trail.find((r) => r.kind === 'approval_consumed' && r.approval_id === held.json.approval_id);
    expect(consumed?.decision_id).toBe(ran.headers['x-toolgate-decision-id']);
    const logs = join(stack.dir, 'logs');
    const authzLog = (await Promise.all((await readdir(logs)).filter((f) => f.startsWith('authz-')).map((f) => readFile(join(logs, f), 'utf8')))).join('');
    const consumedLine = authzLog.split('\n').find((l) => l.includes(held.json.approval_id) && l.includes('"consumed"'));
    expect(consumedLine).toContain(ran.headers['x-toolgate-decision-id'] as string);
    const metrics = await (await fetch(`http://127.0.0.1:${stack.authzHttpPort}/metrics`)).text();
    for (const event of ['requested', 'consumed', 'approved']) expect(metrics).toMatch(new RegExp(`toolgate_approvals_total\\{event="${event}"\\} [1-9]`));
  });

  it('a rejection on the page refuses the retry with 403 approval_rejected, and the call never runs', async () => {
    const message = 'approve: drop the cache';
    const held = await echo(message);
    expect(held.status).toBe(202);
    expect(await decideInBrowser(held.json.url, 'reject')).toBe('rejected');
    const retry = await echo(message);
    expect(retry.status).toBe(403);
    expect(retry.json.error.code).toBe('approval_rejected');
    expect(retry.json.error.reasons.join(' ')).toContain('rejected by alice');
    expect(await ranWith(message)).toBe(0);
    // Decided once: a late approval of the rejected request is refused.
    expect((await decideByApi(held.json.approval_id, 'approve')).status).toBe(409);
  });

  it('changed arguments need a new approval; the approved call itself still runs', async () => {
    const held = await echo('approve: a');
    expect((await decideByApi(held.json.approval_id, 'approve')).json.status).toBe('approved');
    const changed = await echo('approve: b');
    expect(changed.status).toBe(202);
    expect(changed.json.approval_id).not.toBe(held.json.approval_id);
    expect(await ranWith('approve: b')).toBe(0);
    expect((await echo('approve: a')).status).toBe(200);
  });

  it('the agent cannot approve its own call, a non-member cannot approve, and no token gets nothing', async () => {
    const held = await echo('approve: self-service');
    expect(held.status).toBe(202);
    // ops-bot with an approver's token (in the group): still its own call.
    const own = await decideByApi(held.json.approval_id, 'approve', await stack.approverJwtFor('ops-bot'));
    expect(own.status).toBe(403);
    expect(own.json.error.code).toBe('own_call');
    const outsider = await decideByApi(held.json.approval_id, 'approve', await stack.approverJwtFor('mallory', ['developers']));
    expect(outsider.status).toBe(403);
    expect(outsider.json.error.code).toBe('not_an_approver');
    // The agent's own token is for the tools' audience, not the approvals': Envoy's jwt_authn refuses it.
    const agentToken = await decideByApi(held.json.approval_id, 'approve', agentJwt);
    expect(agentToken.status).toBe(403);
    expect(agentToken.json.error.code).toBe('forbidden');
    const anonymous = await fetch(approvalsUrl(held.json.approval_id), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"verdict":"approve"}' });
    expect(anonymous.status).toBe(401);
    expect((await echo('approve: self-service')).status).toBe(202);
  });

  it('a form post without its anti-forgery token, or from another origin, is refused', async () => {
    const held = await echo('approve: csrf');
    const form = (extra: Record<string, string>): Promise<globalThis.Response> =>
      fetch(approvalsUrl(held.json.approval_id), { method: 'POST', headers: { authorization: `Bearer ${approverJwt}`, 'content-type': 'application/x-www-form-urlencoded', ...extra }, body: 'verdict=approve' });
    expect((await form({})).status).toBe(403);
    const cross = await fetch(approvalsUrl(held.json.approval_id), { method: 'POST', headers: { authorization: `Bearer ${approverJwt}`, 'content-type': 'application/json', origin: 'https://evil.example' }, body: '{"verdict":"approve"}' });
    expect(cross.status).toBe(403);
    expect((await echo('approve: csrf')).status).toBe(202);
    // The page's token is bound to its approver: alice's does not let bob's ambient credentials decide.
    const page = await (await fetch(approvalsUrl(held.json.approval_id), { headers: { authorization: `Bearer ${approverJwt}` } })).text();
    const token = /name="csrf" value="([^"]+)"/.exec(page)?.[1] as string;
    expect(token).toBeTruthy();
    const asBob = await fetch(approvalsUrl(held.json.approval_id), { method: 'POST', headers: { authorization: `Bearer ${await stack.approverJwtFor('bob')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: `verdict=approve&csrf=${encodeURIComponent(token)}` });
    expect(asBob.status).toBe(403);
    expect(await asBob.text()).toContain('anti-forgery token');
    const asAlice = await fetch(approvalsUrl(held.json.approval_id), { method: 'POST', headers: { authorization: `Bearer ${approverJwt}`, 'content-type': 'application/x-www-form-urlencoded' }, body: `verdict=approve&csrf=${encodeURIComponent(token)}` });
    expect(asAlice.status).toBe(200);
    expect((await echo('approve: csrf')).status).toBe(200);
    // Nonsense ids are simply not found.
    expect((await fetch(approvalsUrl('%E0%A4%A'), { headers: { authorization: `Bearer ${approverJwt}` } })).status).toBe(404);
  });

  it('MCP: the SDK client gets the URL elicitation (-32042); after the approval the same call runs', async () => {
    const mcpUrl = new URL(`http://127.0.0.1:${stack.envoyHttpPort}/mcp`);
    const jwt = await stack.jwtFor('ops-bot', { aud: mcpUrl.href });
    const client = new Client({ name: 'toolgate-approvals-e2e', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
    await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
    try {
      const args = { message: 'approve: over mcp' };
      const err = await client.callTool({ name: 'echo', arguments: args }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(UrlElicitationRequiredError);
      const elicitation = (err as UrlElicitationRequiredError).elicitations[0];
      expect(elicitation).toMatchObject({ mode: 'url' });
      expect(elicitation?.url).toMatch(new RegExp(`^${approvalsUrl('apr_')}`));
      // The same exact call over REST and MCP has one digest: the approval is the same one.
      const id = elicitation?.elicitationId as string;
      expect((await decideByApi(id, 'approve')).json.status).toBe('approved');
      const result = await client.callTool({ name: 'echo', arguments: args });
      expect(result.isError).not.toBe(true);
      expect(JSON.stringify(result.structuredContent ?? result.content)).toContain('approve: over mcp');
      const again = await client.callTool({ name: 'echo', arguments: args }).then(() => undefined, (e: unknown) => e);
      expect(again).toBeInstanceOf(UrlElicitationRequiredError);
      await waitUntil('the MCP call ran once', async () => (await ranWith(args.message)) === 1);
    } finally {
      await client.close();
    }
  });
});

describe('approvals expire', () => {
  let stack: Stack;
  let agentJwt: string;
  const TTL_S = 2;

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', approvals: { ttlSeconds: TTL_S } });
    agentJwt = await stack.jwtFor('ops-bot');
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const scaleToZero = (): Promise<Response> => stack.call('/v1/tools/k8s_scale_deployment', { namespace: 'production', name: 'web', replicas: 0 }, { jwt: agentJwt });
  const approve = async (id: string): Promise<number> =>
    (await fetch(`http://127.0.0.1:${stack.envoyHttpPort}/approvals/${id}`, { method: 'POST', headers: { authorization: `Bearer ${await stack.approverJwtFor('alice')}`, 'content-type': 'application/json' }, body: '{"verdict":"approve"}' })).status;

  it('an expired request cannot be approved, an expired approval cannot be used: the agent must ask again', async () => {
    const first = await scaleToZero();
    expect(first.status).toBe(202);
    await new Promise((r) => setTimeout(r, TTL_S * 1000 + 300));
    expect(await approve(first.json.approval_id)).toBe(409);

    const second = await scaleToZero();
    expect(second.status).toBe(202);
    expect(second.json.approval_id).not.toBe(first.json.approval_id);
    expect(await approve(second.json.approval_id)).toBe(200);
    await new Promise((r) => setTimeout(r, TTL_S * 1000 + 300));
    const late = await scaleToZero();
    expect(late.status).toBe(202);
    expect(late.json.approval_id).not.toBe(second.json.approval_id);
    expect(stack.upstream.requests().filter((r) => r.path === '/v1/tools/k8s_scale_deployment')).toHaveLength(0);
  });
});
