import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, sendJson } from '../../../http/respond.js';

/** What a warm pod receives for its one call: everything the call's Secret would hold for a Job. */
export interface Claim {
  call_id: string;
  arguments: Record<string, unknown>;
  result_url: string;
  result_token: string;
  traceparent?: string;
}

interface WaitingPod {
  token: Buffer;
  /** The pod's open request, while it waits: the pod is ready exactly when this is set. */
  waiter?: ServerResponse;
  /** Set once; a pod gets at most one claim, ever. */
  claim?: Claim;
  delivered: boolean;
  /** Whether onReady was called for it. */
  announced: boolean;
}

const ROUTE = /^\/internal\/v1\/warm\/([a-z0-9-]{1,63})\/claim$/;
/** How long a pod's request is held before it is told to ask again (under every proxy's idle timeout). */
const HOLD_MS = 20_000;

/**
 * The authenticated hand-off to warm pods. Each pod asks, with its own bearer token (from its own Secret),
 * for its call and is held until the executor has one for it: a pod whose request is held is ready (its
 * container runs and reaches the executor), so a claim is answered at once. A pod gets one claim, once:
 * asking again after it was delivered is refused (410), so no pod can serve two calls.
 */
export class ClaimChannel {
  private readonly pods = new Map<string, WaitingPod>();

  /** @param onReady called once per pod, when it first waits for its call (its container runs and reaches us). */
  constructor(private readonly onReady: (pod: string) => void = () => undefined) {}

  register(pod: string, token: string): void {
    this.pods.set(pod, { token: Buffer.from(token), delivered: false, announced: false });
  }

  forget(pod: string): void {
    const p = this.pods.get(pod);
    p?.waiter?.destroy();
    this.pods.delete(pod);
  }

  /** Ready: its request is held right now (so the claim reaches it without waiting). */
  ready(pod: string): boolean {
    const p = this.pods.get(pod);
    return p !== undefined && p.claim === undefined && p.waiter !== undefined && !p.waiter.destroyed;
  }

  /** Has asked for its call at least once and has none yet: it takes one now, or when it asks again. */
  waiting(pod: string): boolean {
    const p = this.pods.get(pod);
    return p !== undefined && p.announced && p.claim === undefined && !p.delivered;
  }

  /**
   * Takes back a claim the pod has not taken; true when it had not (the pod is forgotten: it can never take it,
   * nor any other, and its next request is refused), false when it already had.
   */
  revoke(pod: string): boolean {
    const p = this.pods.get(pod);
    if (p?.delivered) return false;
    this.forget(pod);
    return true;
  }

  /** Gives the pod its call; false when the pod cannot take it (unknown, already claimed). */
  offer(pod: string, claim: Claim): boolean {
    const p = this.pods.get(pod);
    if (!p || p.claim) return false;
    p.claim = claim;
    if (p.waiter && !p.waiter.destroyed) this.deliver(p, p.waiter);
    return true;
  }

  /** Whether the pod has taken its claim (its request was answered with it). */
  delivered(pod: string): boolean {
    return this.pods.get(pod)?.delivered ?? false;
  }

  private deliver(p: WaitingPod, res: ServerResponse): void {
    p.waiter = undefined;
    p.delivered = true;
    sendJson(res, 200, p.claim);
  }

  handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const m = ROUTE.exec(req.url ?? '');
    if (!m) return false;
    req.resume();
    const p = this.pods.get(m[1] as string);
    const presented = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!p || presented.length !== p.token.length || !timingSafeEqual(presented, p.token)) {
      sendError(res, 403, 'forbidden', 'no warm pod of this executor has this token');
      return true;
    }
    if (req.method !== 'GET') {
      sendError(res, 405, 'method_not_allowed', 'GET your claim');
      return true;
    }
    if (p.delivered) {
      sendError(res, 410, 'claim_delivered', 'this pod has had its one call');
      return true;
    }
    if (p.claim) {
      this.deliver(p, res);
      return true;
    }
    p.waiter?.destroy();
    p.waiter = res;
    if (!p.announced) {
      p.announced = true;
      this.onReady(m[1] as string);
    }
    const hold = setTimeout(() => {
      if (p.waiter === res) {
        p.waiter = undefined;
        res.writeHead(204).end();
      }
    }, HOLD_MS);
    res.on('close', () => {
      clearTimeout(hold);
      if (p.waiter === res) p.waiter = undefined;
    });
    return true;
  };
}
