import type http2 from 'node:http2';
import type { Logger } from '../../shared/logger.js';
import { errorMessage } from '../../shared/logger.js';

export interface KeepaliveOptions {
  /** How often each connection is pinged. */
  intervalMs: number;
  /** A ping unanswered this long means the peer is gone: the connection is closed and its calls cancelled. */
  timeoutMs: number;
}

const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 30_000, timeoutMs: 10_000 };

/**
 * gRPC keepalive, server side: a connection whose peer vanished without a FIN (a node lost, a NAT entry
 * expired) would otherwise hold its calls and memory until TCP gives up, minutes later.
 */
export function watchSessionLiveness(session: http2.ServerHttp2Session, opts: KeepaliveOptions = DEFAULT_KEEPALIVE, log: Logger): void {
  const interval = setInterval(() => {
    if (session.destroyed || session.closed) return;
    const timeout = setTimeout(() => {
      log.warn('gRPC connection closed: keepalive ping unanswered', { timeout_ms: opts.timeoutMs });
      session.destroy();
    }, opts.timeoutMs);
    timeout.unref();
    const sent = session.ping((err) => {
      clearTimeout(timeout);
      if (err && !session.destroyed) log.warn('gRPC keepalive ping failed', { cause: errorMessage(err) });
    });
    if (!sent) clearTimeout(timeout);
  }, opts.intervalMs);
  interval.unref();
  session.once('close', () => clearInterval(interval));
}
