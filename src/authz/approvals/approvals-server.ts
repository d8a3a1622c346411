import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditTrail } from '../../audit/audit-trail.js';
import { errorMessage, type Logger } from '../../shared/logger.js';
import { APPROVAL_ID_PATTERN, type Approval } from './approval.js';
import { approvalPage, errorPage, pendingListPage } from './approval-page.js';
import { ApprovalStoreUnavailable, type ApprovalStore, type Verdict } from './approval-store.js';
import { ApproverError, type Approver, type ApproverVerifier } from './approver-identity.js';
import type { ApprovalMetrics } from './approval-metrics.js';

export interface ApprovalsServerOptions {
  address: string;
  store: ApprovalStore;
  verifier: ApproverVerifier;
  /** The page's public URL (its origin is the only one a form may be posted from). */
  publicUrl: string;
  /** Keys the forms' anti-forgery tokens; shared by replicas (derived from the decision key) so any replica accepts them. */
  csrfKey?: Buffer;
  log: Logger;
  audit?: AuditTrail;
  metrics?: ApprovalMetrics;
  now?: () => number;
}

export interface ApprovalsServer {
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the page's own form posts.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

class HttpError extends Error {
  constructor(readonly httpStatus: number, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * The approvers' endpoint and page (issue 18), on its own port of the authz process, behind Envoy's
 * /approvals/ route:
 *   GET  /approvals/            pending approvals (HTML; JSON with Accept: application/json)
 *   GET  /approvals/{id}        one approval: tool, arguments, agent, reasons, revision (HTML or JSON)
 *   POST /approvals/{id}        approve or reject: a form (with its anti-forgery token) or JSON {"verdict","note"}
 * Every request carries the approver's JWT (Authorization header); an approver is a member of the configured
 * group, and never the agent whose call it is.
 */
export async function startApprovalsServer(o: ApprovalsServerOptions): Promise<ApprovalsServer> {
  const csrfKey = o.csrfKey ?? randomBytes(32);
  const now = (): number => o.now?.() ?? Date.now();
  const allowedOrigin = new URL(o.publicUrl).origin;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const wantsJson = (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');
    try {
      const path = new URL(req.url ?? '/', 'http://approvals.invalid').pathname;
      const m = /^\/approvals\/([^/]*)$/.exec(path);
      if (!m) throw new HttpError(404, 'not_found', `no approvals endpoint ${path}`);
      const approver = await o.verifier.verify(req.headers.authorization);
      const id = safeDecode(m[1] as string);
      if (id === '') {
        if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'the list of pending approvals is read with GET');
        const list = await o.store.pending(now(), 200);
        return wantsJson ? sendJson(res, 200, { approvals: list.map(view) }) : sendHtml(res, 200, pendingListPage(list, approver.id));
      }
      if (!APPROVAL_ID_PATTERN.test(id)) throw new HttpError(404, 'not_found', 'no such approval');
      if (req.method === 'GET') {
        const a = await o.store.get(id);
        if (!a) throw new HttpError(404, 'not_found', 'no such approval');
        return wantsJson ? sendJson(res, 200, view(a)) : sendHtml(res, 200, approvalPage(a, { now: now(), approverId: approver.id, csrfToken: csrfToken(csrfKey, approver.id, id) }));
      }
      if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'an approval is read with GET and decided with POST');
      const { verdict, note, fromForm } = await readDecision(req, csrfKey, approver, id, allowedOrigin);
      const result = await decide(o, approver, id, verdict, note, now());
      if (fromForm && !wantsJson) return sendHtml(res, 200, approvalPage(result, { now: now(), approverId: approver.id, csrfToken: '', message: verdict === 'approved' ? 'Approved: the agent may now run exactly this call once.' : 'Rejected.' }));
      return sendJson(res, 200, view(result));
    } catch (err) {
      const e = err instanceof HttpError || err instanceof ApproverError ? err : err instanceof ApprovalStoreUnavailable ? new HttpError(503, 'approvals_unavailable', err.message) : undefined;
      if (!e) o.log.error('approvals endpoint failed', { cause: errorMessage(err), stack: err instanceof Error ? err.stack : undefined });
      const status = e?.httpStatus ?? 500;
      const code = e?.code ?? 'internal_error';
      const message = e?.message ?? 'the approval could not be read or decided (see the gateway log)';
      if (status === 401) res.setHeader('www-authenticate', 'Bearer');
      return wantsJson || req.method === 'POST' && !(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? sendJson(res, status, { error: { code, message } }) : sendHtml(res, status, errorPage(status, message));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.log.error('approvals endpoint failed', { cause: errorMessage(err) });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal_error', message: 'internal error' } });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const [host, port] = splitAddress(o.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function decide(o: ApprovalsServerOptions, approver: Approver, id: string, verdict: Verdict, note: string | undefined, now: number): Promise<Approval> {
  const current = await o.store.get(id);
  if (!current) throw new HttpError(404, 'not_found', 'no such approval');
  // An agent never approves its own call, whatever groups its token names.
  if (current.agent_id === approver.id) throw new HttpError(403, 'own_call', `${approver.id} cannot decide an approval of its own call`);
  const result = await o.store.decide(id, verdict, approver.id, note, now);
  if (result.outcome === 'not_found') throw new HttpError(404, 'not_found', 'no such approval');
  if (result.outcome === 'expired') throw new HttpError(409, 'approval_expired', `approval ${id} expired at ${new Date(result.approval.expires_at).toISOString()}; the agent must ask again`);
  if (result.outcome === 'already_decided') throw new HttpError(409, 'already_decided', `approval ${id} is already ${result.approval.status}`);
  const a = result.approval;
  o.metrics?.count(verdict);
  o.log.info('approval decided', { approval_id: a.id, verdict, approver: approver.id, agent_id: a.agent_id, tool: a.tool, arguments_digest: a.arguments_digest, policy_revision: a.policy_revision });
  await o.audit?.append({
    kind: 'approval_decided',
    approval_id: a.id,
    verdict,
    approver: approver.id,
    note: a.note ?? null,
    agent_id: a.agent_id,
    tool: a.tool,
    arguments_digest: a.arguments_digest,
    policy_revision: a.policy_revision,
    requested_by_decision: a.requested_by_decision,
    expires_at: new Date(a.expires_at).toISOString(),
  });
  return a;
}

async function readDecision(req: IncomingMessage, csrfKey: Buffer, approver: Approver, id: string, allowedOrigin: string): Promise<{ verdict: Verdict; note: string | undefined; fromForm: boolean }> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  // A browser never sends a cross-site request that a page did not make: refuse those that say they are.
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== allowedOrigin) throw new HttpError(403, 'cross_origin', `a decision is accepted only from ${allowedOrigin} (got Origin ${origin})`);
  if (req.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'cross_origin', 'a decision is not accepted from another site');
  const text = await readBody(req);
  let verdictText: unknown;
  let note: unknown;
  let fromForm = false;
  if (type === 'application/x-www-form-urlencoded') {
    const form = new URLSearchParams(text);
    // Forms are what a forged cross-site request can send: each carries a token bound to this approver and approval.
    const token = form.get('csrf') ?? '';
    if (!sameToken(token, csrfToken(csrfKey, approver.id, id))) throw new HttpError(403, 'csrf_token_invalid', 'the form\'s anti-forgery token is missing or not this approver\'s: reload the page');
    verdictText = form.get('verdict');
    note = form.get('note') ?? undefined;
    fromForm = true;
  } else if (type === 'application/json') {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'invalid_body', 'the body is not JSON');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid_body', 'the body must be {"verdict": "approve" | "reject", "note"?: string}');
    ({ verdict: verdictText, note } = body as { verdict?: unknown; note?: unknown });
  } else {
    throw new HttpError(415, 'unsupported_media_type', 'send application/json or a form (application/x-www-form-urlencoded)');
  }
  if (verdictText !== 'approve' && verdictText !== 'reject') throw new HttpError(400, 'invalid_verdict', 'verdict must be "approve" or "reject"');
  if (note !== undefined && (typeof note !== 'string' || note.length > 500)) throw new HttpError(400, 'invalid_note', 'note must be a string of at most 500 characters');
  return { verdict: verdictText === 'approve' ? 'approved' : 'rejected', note: note === '' ? undefined : (note as string | undefined), fromForm };
}

/** A malformed escape is just an id that does not exist (never a 500). */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function csrfToken(key: Buffer, approverId: string, approvalId: string): string {
  return createHmac('sha256', key).update(`approval-form\n${approverId}\n${approvalId}`).digest('base64url');
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'body_too_large', `a decision is at most ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** An approval as the API shows it (times as ISO strings). */
function view(a: Approval, now = Date.now()): Record<string, unknown> {
  return {
    ...a,
    // A pending or approved approval past its expiry is dead: say so rather than leave it looking usable.
    expired: (a.status === 'pending' || a.status === 'approved') && now >= a.expires_at,
    created_at: new Date(a.created_at).toISOString(),
    expires_at: new Date(a.expires_at).toISOString(),
    ...(a.decided_at ? { decided_at: new Date(a.decided_at).toISOString() } : {}),
    ...(a.used_at ? { used_at: new Date(a.used_at).toISOString() } : {}),
  };
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}
