import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isResultEnvelope, MAX_RESULT_BYTES, type ResultEnvelope } from '../../../runner/envelope.js';
import { errorMessage } from '../../../shared/logger.js';
import { BodyTooLargeError, readBody } from '../../http/read-body.js';
import { sendError, sendJson } from '../../http/respond.js';
import type { JobRef } from './job-identity.js';

/**
 * Where Jobs report results (and fetch large arguments). Each call has its own bearer token; a request is
 * accepted only for the call id in its path with exactly that call's token. So a Job, even a compromised one,
 * can never post another call's result. Reached by Jobs directly, never routed by Envoy.
 *
 * With `shared` (several executor replicas), a result is accepted by whichever replica receives it: the
 * token is checked against the call's Job (see job-identity.ts ResultTokens), the result stored with the Job
 * (result-store.ts) before it is acknowledged; every waiter in this process has it at once. Without it, only
 * the replica that started the call accepts its result, once.
 */
interface PendingCall {
  token: Buffer;
  params: string;
  job: JobRef | undefined;
  deliver: (envelope: ResultEnvelope) => void;
}

export interface SharedResults {
  /** The call's Job when `token` is its token, else undefined. */
  verify(callId: string, token: string): Promise<JobRef | undefined>;
  store(callId: string, job: JobRef, envelope: ResultEnvelope): Promise<void>;
}

const ROUTE = /^\/internal\/v1\/calls\/([0-9a-f]{20})\/(result|params)$/;

export class ResultChannel {
  private readonly pending = new Map<string, PendingCall>();
  private readonly listeners = new Map<string, Set<(envelope: ResultEnvelope) => void>>();

  constructor(private readonly shared?: SharedResults) {}

  /**
   * Waits for one call's result; returns how to stop waiting. A retry of the same call id may expect again
   * before an earlier run has forgotten: each forget removes only its own entry, never the retry's.
   */
  expect(callId: string, token: string, params: string, deliver: (envelope: ResultEnvelope) => void, job?: JobRef): () => void {
    const entry: PendingCall = { token: Buffer.from(token), params, job, deliver };
    this.pending.set(callId, entry);
    return () => {
      if (this.pending.get(callId) === entry) this.pending.delete(callId);
    };
  }

  /** Hears a call's result if it arrives here, for a replica following a Job another replica started. */
  listen(callId: string, deliver: (envelope: ResultEnvelope) => void): () => void {
    let set = this.listeners.get(callId);
    if (!set) this.listeners.set(callId, (set = new Set()));
    set.add(deliver);
    return () => {
      set.delete(deliver);
      if (set.size === 0 && this.listeners.get(callId) === set) this.listeners.delete(callId);
    };
  }

  /** An executor route: returns true when it handled the request. */
  handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const m = ROUTE.exec(req.url ?? '');
    if (!m) return false;
    const callId = m[1] as string;
    const presented = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const call = this.pending.get(callId);
    const local = call !== undefined && sameToken(call.token, presented);
    if (m[2] === 'params' && req.method === 'GET') {
      // Large arguments live only in the memory of the replica that started the call.
      if (!local) return forbidden(req, res);
      res.writeHead(200, { 'content-type': 'application/json' }).end(call.params);
      return true;
    }
    if (m[2] !== 'result' || req.method !== 'POST') {
      sendError(res, 405, 'method_not_allowed', 'POST a result, GET params');
      return true;
    }
    if (!local && !this.shared) return forbidden(req, res);
    void this.receive(req, res, callId, presented, local ? call : undefined);
    return true;
  };

  private async receive(req: IncomingMessage, res: ServerResponse, callId: string, presented: string, call: PendingCall | undefined): Promise<void> {
    let job: JobRef | undefined = call?.job;
    if (!call) {
      try {
        job = await this.shared?.verify(callId, presented);
      } catch (err) {
        req.resume();
        return sendError(res, 503, 'unavailable', `cannot check this result against its Job now: ${errorMessage(err)}`);
      }
      if (!job) {
        forbidden(req, res);
        return;
      }
    }
    let body: Buffer;
    try {
      body = await readBody(req, MAX_RESULT_BYTES + 64 * 1024);
    } catch (err) {
      return sendError(res, err instanceof BodyTooLargeError ? 413 : 400, 'invalid_body', String(err));
    }
    let envelope: unknown;
    try {
      envelope = JSON.parse(body.toString('utf8'));
    } catch {
      return sendError(res, 400, 'invalid_body', 'result is not JSON');
    }
    if (!isResultEnvelope(envelope) || envelope.call_id !== callId) return sendError(res, 400, 'invalid_result', 'not a result envelope for this call');
    if (!this.shared || !job) {
      // The body arrived later: the run may have ended, or a duplicate post may have won, meanwhile.
      if (this.pending.get(callId) !== call) return sendError(res, 403, 'forbidden', 'no call is waiting for a result with this token');
    }
    // Whoever waits in this process has its answer at once (a warm call's latency does not include the store).
    const waiting = this.pending.get(callId);
    if (waiting && (waiting === call || (job && waiting.job?.uid === job.uid))) {
      this.pending.delete(callId);
      waiting.deliver(envelope);
    }
    for (const deliver of this.listeners.get(callId) ?? []) deliver(envelope);
    if (this.shared && job) {
      // Stored before it is acknowledged: a runner that got 202 knows every replica can read its result (one
      // that gets 503 posts again, and the retry is stored by whichever replica receives it).
      try {
        await this.shared.store(callId, job, envelope);
      } catch (err) {
        return sendError(res, 503, 'unavailable', `cannot store this result now: ${errorMessage(err)}`);
      }
    }
    sendJson(res, 202, { accepted: true });
  }
}

function sameToken(expected: Buffer, presented: string): boolean {
  const got = Buffer.from(presented);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function forbidden(req: IncomingMessage, res: ServerResponse): true {
  req.resume();
  sendError(res, 403, 'forbidden', 'no call is waiting for a result with this token');
  return true;
}
