import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { splitHostPort } from '../../shared/http-endpoints.js';
import { sendError } from './respond.js';

/**
 * The result channel on a listener of its own (runner.callback_address): tool pods must reach it, and then
 * reach only it, never the agent-facing port where calls are started.
 */
export interface CallbackServer {
  port: number;
  close(): Promise<void>;
}

export async function startCallbackServer(address: string, routes: ((req: IncomingMessage, res: ServerResponse) => boolean)[]): Promise<CallbackServer> {
  const server: Server = createServer((req, res) => {
    for (const route of routes) if (route(req, res)) return;
    req.resume();
    sendError(res, 404, 'not_found', 'this listener serves only tool results');
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  const [host, port] = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
