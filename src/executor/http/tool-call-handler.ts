import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, parseToolArguments } from '../../shared/body/strict-json.js';
import { ATTESTATION_TTL_SECONDS, checkAttestation } from '../../shared/decision-attestation.js';
import { TRUSTED_HEADERS } from '../../shared/trusted-headers.js';
import { callIdentity } from '../call/call-identity.js';
import { obligatedTool } from '../call/obligated-tool.js';
import { busyRefusal, startCall, type CallDeps } from '../call/start-call.js';
import type { UsedDecisions } from '../call/used-decisions.js';
import type { ToolOutcome } from '../runners/runner.js';
import { BodyTooLargeError, readBody } from './read-body.js';
import { sendError, sendJson } from './respond.js';

export interface ToolCallHandlerDeps extends CallDeps {
  maxBodyBytes: number;
  /** Counts refusals that happen before a call is admitted (should not occur behind the gateway). */
  onRefused?: (tool: string, httpStatus: number) => void;
  /** Shared with the authz server: only calls it attested run (see shared/decision-attestation.ts). */
  attestationKey: Buffer;
  /** Decisions already accepted by this process: each attestation is accepted once. */
  usedDecisions: UsedDecisions;
}

const TOOL_PATH = /^\/v1\/tools\/([^/?]+)(?:\?.*)?$/;

/**
 * call -> runner -> result. A call runs only with the authz server's attestation of this decision over these
 * exact body bytes; the arguments are read with the very functions the authz server used (strict UTF-8,
 * strict JSON without duplicate keys, same size limit), so what was authorized is what runs.
 */
export function createToolCallHandler(deps: ToolCallHandlerDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const refuse = (status: number, code: string, message: string, extra: Record<string, unknown> = {}): void => {
      deps.onRefused?.(m?.[1] ?? '', status);
      deps.log.warn('call refused', { url: req.url, http_status: status, code, message });
      sendError(res, status, code, message, extra);
    };
    const m = TOOL_PATH.exec(req.url ?? '');
    if (!m) return refuse(404, 'not_found', `no endpoint ${req.url}; tool calls are POST /v1/tools/{tool}`);
    if (req.method !== 'POST') return refuse(405, 'method_not_allowed', `tool calls use POST, not ${req.method}`);
    const toolName = decodeURIComponent(m[1] as string);

    // Only calls that the gateway authorized arrive with these; Envoy strips client-sent copies.
    const decisionId = header(req, TRUSTED_HEADERS.decisionId);
    const agentId = header(req, TRUSTED_HEADERS.agentId);
    const authorizedTool = header(req, TRUSTED_HEADERS.tool);
    if (!decisionId || !agentId) {
      return refuse(403, 'not_authorized', 'this call did not pass the gateway\'s authorization (no decision id or agent)');
    }
    if (authorizedTool !== toolName) {
      return refuse(403, 'not_authorized', `the decision was for tool "${authorizedTool ?? ''}", not "${toolName}"`);
    }
    const tool = deps.catalog.get(toolName);
    if (!tool) return refuse(404, 'unknown_tool', `unknown tool "${toolName}"`);

    let raw: Buffer;
    try {
      raw = await readBody(req, deps.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return refuse(413, 'body_too_large', err.message);
      throw err;
    }
    const policyRevision = header(req, TRUSTED_HEADERS.policyRevision) ?? '';
    const obligationsHeader = header(req, TRUSTED_HEADERS.obligations);
    const decision = { decisionId, agentId, agentMethod: header(req, TRUSTED_HEADERS.agentMethod) ?? '', tool: toolName, policyRevision, body: raw, ...(obligationsHeader !== undefined ? { obligations: obligationsHeader } : {}) };
    // Accepted once: this process and, across replicas, the call's Job remember a decision for its whole life.
    const attested = checkAttestation(deps.attestationKey, decision, header(req, TRUSTED_HEADERS.attestation), Date.now(), ATTESTATION_TTL_SECONDS);
    if (!attested.ok && (attested.reason === 'expired' || attested.reason === 'not_yet_valid' || attested.reason === 'too_long')) {
      return refuse(403, 'attestation_expired', `the gateway's attestation of this call is not valid now (${attested.reason.replaceAll('_', ' ')}); send the call again through the gateway`);
    }
    if (!attested.ok) {
      return refuse(403, 'not_authorized', 'this call carries no valid attestation from the gateway\'s authorization for this agent, tool and body');
    }
    if (!deps.usedDecisions.claim(decisionId, attested.expiresAt)) {
      return refuse(403, 'attestation_used', 'this decision was already used: an attested call runs once; send the call again through the gateway');
    }
    let args: Record<string, unknown>;
    try {
      args = parseToolArguments(decodeUtf8Strict(raw));
    } catch (err) {
      if (err instanceof BodyError) return refuse(400, 'invalid_body', `request body: ${err.message}`);
      throw err;
    }
    const errors = deps.catalog.validateArguments(tool, args);
    if (errors.length > 0) {
      return refuse(400, 'invalid_arguments', `arguments for tool "${tool.name}" are invalid`, { tool: tool.name, fields: errors });
    }
    // The limits the policy obliged (attested above): the call runs with them or not at all.
    const obliged = obligatedTool(tool, obligationsHeader);
    if (!obliged.ok) return refuse(403, 'invalid_obligations', `the decision's obligations cannot be applied: ${obliged.message}`);

    const idempotencyKey = header(req, 'idempotency-key');
    const started = startCall(deps, {
      tool: obliged.tool,
      ...(obliged.obligations ? { obligations: obliged.obligations } : {}),
      args,
      agentId,
      decisionId,
      policyRevision,
      identity: callIdentity(agentId, tool.name, decisionId, idempotencyKey),
      // Only a call with an Idempotency-Key can be asked for again: keep no outcome for the others.
      idempotent: idempotencyKey !== undefined && idempotencyKey !== '',
      traceparent: header(req, 'traceparent'),
      protocol: 'rest',
    });
    if (started.kind === 'busy') {
      const [code, message] = busyRefusal(started, agentId);
      return sendError(res, 429, code, message, {}, { 'retry-after': String(started.retryAfterSeconds) });
    }
    if (started.kind === 'conflict') {
      return sendError(res, 422, 'idempotency_conflict', 'this Idempotency-Key was already used with different arguments');
    }

    const onClose = (): void => {
      if (!res.writableFinished) started.release();
    };
    res.on('close', onClose);
    const outcome = await started.outcome;
    res.off('close', onClose);
    started.release();
    const status = respondWithOutcome(res, { callId: started.callId, tool: tool.name, outcome, replayed: started.kind === 'replay' });
    started.finish(outcome, status);
  };
}

function respondWithOutcome(res: ServerResponse, o: { callId: string; tool: string; outcome: ToolOutcome; replayed: boolean }): number {
  const common = { call_id: o.callId, tool: o.tool };
  const headers: Record<string, string> = { 'x-toolgate-call-id': o.callId };
  if (o.replayed) headers['idempotent-replayed'] = 'true';
  const out = o.outcome;
  switch (out.status) {
    case 'succeeded':
      sendJson(res, 200, { ...common, status: 'succeeded', result: out.result, duration_ms: out.durationMs }, headers);
      return 200;
    case 'failed':
      sendError(res, 502, 'tool_failed', out.error, { ...common, exit_code: out.exitCode, duration_ms: out.durationMs }, headers);
      return 502;
    case 'timeout':
      sendError(res, 504, 'tool_timeout', `the tool did not finish within its timeout`, { ...common, duration_ms: out.durationMs }, headers);
      return 504;
    case 'cancelled':
      // The client is gone; nobody reads this, but keep the protocol whole.
      sendError(res, 499, 'cancelled', 'the call was cancelled', common, headers);
      return 499;
    case 'unavailable':
      sendError(res, 503, 'runner_unavailable', out.error, common, headers);
      return 503;
    case 'refused': {
      const status = out.code === 'idempotency_conflict' ? 422 : 403;
      sendError(res, status, out.code, out.error, common, headers);
      return status;
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
