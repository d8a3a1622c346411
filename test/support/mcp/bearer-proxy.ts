import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Test double for an agent's credentials, for MCP tools that cannot send any (the conformance suite's client
 * takes a URL, no headers): a loopback HTTP proxy that adds `Authorization: Bearer <jwt>` and forwards every
 * request to the gateway's Envoy otherwise unchanged (Host and Origin too), streaming both ways.
 */
export async function startBearerProxy(target: { host: string; port: number }, jwt: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const upstream = request(
      { host: target.host, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, authorization: `Bearer ${jwt}` } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
