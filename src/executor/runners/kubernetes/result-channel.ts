import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isResultEnvelope, MAX_RESULT_BYTES, type ResultEnvelope } from '../../../runner/envelope.js';
import { BodyTooLargeError, readBody } from '../../http/read-body.js';
import { sendError, sendJson } from '../../http/respond.js';

/**
 * Where Jobs report results (and fetch large arguments). Each call gets its own random bearer token; a
 * request is accepted only for the call id in its path with exactly that call's token, once. So a Job, even a
 * compromised one, can never post another call's result. Reached by Jobs directly, never routed by Envoy.
 */
interface PendingCall {
  token: Buffer;
  params: string;
  deliver: (envelope: ResultEnvelope) => void;
}

const ROUTE = /^\/internal\/v1\/calls\/([0-9a-f]{20})\/(result|params)$/;

export class ResultChannel {
  private readonly pending = new Map<string, PendingCall>();

  /**
   * Waits for one call's result; returns how to stop waiting. A retry of the same call id may expect again
   * before an earlier run has forgotten: each forget removes only its own entry, never the retry's.
   */
  expect(callId: string, token: string, params: string, deliver: (envelope: ResultEnvelope) => void): () => void {
    const entry: PendingCall = { token: Buffer.from(token), params, deliver };
    this.pending.set(callId, entry);
    return () => {
      if (this.pending.get(callId) === entry) this.pending.delete(callId);
    };
  }

  /** An executor route: returns true when it handled the request. */
  handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const m = ROUTE.exec(req.url ?? '');
    if (!m) return false;
    const callId = m[1] as string;
    const call = this.pending.get(callId);
    const presented = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!call || presented.length !== call.token.length || !timingSafeEqual(presented, call.token)) {
      req.resume();
      sendError(res, 403, 'forbidden', 'no call is waiting for a result with this token');
      return true;
    }
    if (m[2] === 'params' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(call.params);
      return true;
    }
    if (m[2] !== 'result' || req.method !== 'POST') {
      sendError(res, 405, 'method_not_allowed', 'POST a result, GET params');
      return true;
    }
    readBody(req, MAX_RESULT_BYTES + 64 * 1024).then(
      (body) => {
        let envelope: unknown;
        try {
          envelope = JSON.parse(body.toString('utf8'));
        } catch {
          return sendError(res, 400, 'invalid_body', 'result is not JSON');
        }
        if (!isResultEnvelope(envelope) || envelope.call_id !== callId) return sendError(res, 400, 'invalid_result', 'not a result envelope for this call');
        // The body arrived later: the run may have ended, or a duplicate post may have won, meanwhile.
        if (this.pending.get(callId) !== call) return sendError(res, 403, 'forbidden', 'no call is waiting for a result with this token');
        this.pending.delete(callId);
        call.deliver(envelope);
        sendJson(res, 202, { accepted: true });
      },
      (err: unknown) => sendError(res, err instanceof BodyTooLargeError ? 413 : 400, 'invalid_body', String(err)),
    );
    return true;
  };
}
