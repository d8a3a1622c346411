import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A small test upstream standing in for the executor: records what Envoy forwards and echoes it back. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface EchoUpstream {
  port: number;
  url: string;
  requests(): RecordedRequest[];
  clear(): void;
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  let seen: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(',') : (v ?? '');
      const record = { method: req.method ?? '', path: req.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(record);
      const text = JSON.stringify({ echo: record });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  // It stands where the executor stands: the same keep-alive, longer than Envoy's idle timeout for it (60 s),
  // or Envoy may send a request on a connection this server is closing (a reset, seen as 503 under load).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests: () => seen,
    clear: () => {
      seen = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
