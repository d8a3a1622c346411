import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
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

export async function startBundleServer(path = '/bundles/toolgate.tar.gz'): Promise<TestBundleServer> {
  let bundle: Buffer | undefined;
  let etag = '';
  let failing: number | undefined;
  let count = 0;
  const server = createServer((req, res) => {
    count++;
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
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
