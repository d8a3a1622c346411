import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * The small HTTP side of every service: Prometheus scrape endpoint and probes. Kept off the data-plane
 * port so that scraping or probing never competes with calls.
 */
export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(opts: {
  address: string;
  registry: Registry;
  ready: () => boolean;
  status?: () => unknown;
}): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/metrics') {
      opts.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
      return;
    }
    if (url === '/healthz') return json(res, 200, { status: 'ok' });
    if (url === '/readyz') {
      const ok = opts.ready();
      return json(res, ok ? 200 : 503, { ready: ok, ...(opts.status ? { status: opts.status() } : {}) });
    }
    json(res, 404, { error: { code: 'not_found', message: `no endpoint ${url}` } });
  });
  const [host, portText] = splitHostPort(opts.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function splitHostPort(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  if (i === -1) throw new Error(`address "${address}" must be host:port`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), address.slice(i + 1)];
}
