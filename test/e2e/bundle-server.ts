import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A bundle server as security teams run one (any static HTTP server will do): serves one bundle at a path
 * with a strong ETag and honours If-None-Match, so the authz server's polling sees 304 until it changes.
 */
export interface TestBundleServer {
  url: string;
  setBundle(bytes: Buffer): void;
  setFailing(status: number | undefined): void;
  requests(): number;
  close(): Promise<void>;
}

/** HTTPS with this certificate, requiring client certificates signed by `clientCa`, and/or a bearer token. */
export interface BundleServerSecurity {
  tls?: { cert: Buffer; key: Buffer; clientCa: Buffer };
  token?: string;
}

export async function startBundleServer(path = '/bundles/toolgate.tar.gz', security: BundleServerSecurity = {}): Promise<TestBundleServer> {
  let bundle: Buffer | undefined;
  let etag = '';
  let failing: number | undefined;
  let count = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    count++;
    if (security.token && req.headers.authorization !== `Bearer ${security.token}`) {
      res.writeHead(401).end('bearer token required');
      return;
    }
    if (failing) {
      res.writeHead(failing).end('bundle server failing on purpose');
      return;
    }
    if (req.url !== path || !bundle) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', etag, 'content-length': bundle.length }).end(bundle);
  };
  const t = security.tls;
  const server = t ? createHttpsServer({ cert: t.cert, key: t.key, ca: t.clientCa, requestCert: true, rejectUnauthorized: true }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${t ? 'https' : 'http'}://127.0.0.1:${port}${path}`,
    setBundle: (bytes) => {
      bundle = bytes;
      etag = `"${createHash('sha256').update(bytes).digest('hex')}"`;
    },
    setFailing: (status) => {
      failing = status;
    },
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
