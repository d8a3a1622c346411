import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ToolCatalog } from '../../catalog/tool-catalog.js';
import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, parseToolArguments } from '../../shared/body/strict-json.js';
import { argumentsDigest, canonicalJson, sha256Hex } from '../../shared/digest.js';
import type { Logger } from '../../shared/logger.js';
import { ATTESTATION_TTL_SECONDS, checkAttestation } from '../../shared/decision-attestation.js';
import { TRUSTED_HEADERS } from '../../shared/trusted-headers.js';
import type { CallLedger } from '../call/call-ledger.js';
import type { UsedDecisions } from '../call/used-decisions.js';
import type { ActiveCall, CallTelemetry } from '../observability/call-telemetry.js';
import type { Runner, ToolOutcome } from '../runners/runner.js';
import { BodyTooLargeError, readBody } from './read-body.js';
import { sendError, sendJson } from './respond.js';

export interface ToolCallHandlerDeps {
  catalog: ToolCatalog;
  runner: Runner;
  ledger: CallLedger;
  maxBodyBytes: number;
  log: Logger;
  telemetry: CallTelemetry;
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
    const decision = { decisionId, agentId, agentMethod: header(req, TRUSTED_HEADERS.agentMethod) ?? '', tool: toolName, policyRevision, body: raw };
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

    const idempotencyKey = header(req, 'idempotency-key');
    const identity = callIdentity(agentId, tool.name, decisionId, idempotencyKey);
    // A DNS-label-safe id (names the Job), stable for a given identity so retries map to the same call.
    const callId = sha256Hex(identity).slice(0, 20);
    const digest = argumentsDigest(args);
    const fields = deps.catalog.deriveFields(tool, args);
    const call: ActiveCall = deps.telemetry.begin({
      callId,
      tool: tool.name,
      agentId,
      decisionId,
      policyRevision,
      argumentsDigest: digest,
      action: String(fields.action ?? ''),
      resource: String(fields.resource ?? ''),
      namespace: typeof fields.namespace === 'string' ? fields.namespace : undefined,
      traceparent: header(req, 'traceparent'),
    });

    const idempotent = idempotencyKey !== undefined && idempotencyKey !== '';
    const admission = deps.ledger.admit(
      identity,
      digest,
      (signal) => deps.runner.run({ callId, tool, arguments: args, agentId, decisionId, policyRevision, idempotent, signal, ...call.runnerHooks(deps.runner.kind) }),
      // Only a call with an Idempotency-Key can be asked for again: keep no outcome for the others.
      { agentId, retain: idempotent },
    );
    if (admission.kind === 'busy') {
      call.finish(undefined, 429, { replayed: false });
      const [code, message] =
        admission.limit === 'agent'
          ? ['agent_too_many_calls', `agent "${agentId}" is at its limit of calls in flight; retry later`]
          : ['too_many_calls', 'the executor is at its limit of calls in flight; retry later'];
      return sendError(res, 429, code, message, {}, { 'retry-after': String(admission.retryAfterSeconds) });
    }
    if (admission.kind === 'conflict') {
      call.finish(undefined, 422, { replayed: true });
      return sendError(res, 422, 'idempotency_conflict', 'this Idempotency-Key was already used with different arguments');
    }

    const onClose = (): void => {
      if (!res.writableFinished) admission.release();
    };
    res.on('close', onClose);
    const outcome = await admission.outcome;
    res.off('close', onClose);
    admission.release();
    const replayed = admission.kind !== 'run';
    const status = respondWithOutcome(res, { callId, tool: tool.name, outcome, replayed: admission.kind === 'replay' });
    const resultText = outcome.status === 'succeeded' ? canonicalJson(outcome.result) : undefined;
    call.finish(outcome, status, { replayed, ...(resultText !== undefined ? { resultBytes: Buffer.byteLength(resultText), resultDigest: `sha256:${sha256Hex(resultText)}` } : {}) });
    const cause = outcome.status === 'failed' || outcome.status === 'unavailable' ? { cause: outcome.error } : {};
    const logFields = { call_id: callId, tool: tool.name, agent_id: agentId, decision_id: decisionId, status: outcome.status, http_status: status, replayed: admission.kind === 'replay', ...cause };
    if (outcome.status === 'unavailable') deps.log.error('call finished', logFields);
    else deps.log.info('call finished', logFields);
  };
}

/**
 * What makes two requests the same call. With an Idempotency-Key: the key, scoped to the agent and the tool
 * (a key is the agent's, per endpoint). Without: the gateway's decision id, which only the authz server
 * sets (client copies are stripped) and which Envoy keeps across its own retries of the request; never a
 * header the client chooses, such as x-request-id.
 */
export function callIdentity(agentId: string, tool: string, decisionId: string, idempotencyKey: string | undefined): string {
  return JSON.stringify(idempotencyKey ? ['idempotency-key', agentId, tool, idempotencyKey] : ['decision', decisionId]);
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
