import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { freePort, startProcess, waitForTcp, type ManagedProcess } from './managed-process.js';

/**
 * Upstream MCP servers for the e2e tests. Two real ones that no one here wrote, installed as pinned npm
 * devDependencies: `@modelcontextprotocol/server-everything` (Streamable HTTP, SSE responses, sessions) and
 * `kubernetes-mcp-server` (a Go binary shipped in an npm package) pointed at the suite's kube-apiserver.
 * And two test doubles for faults a real server does not produce on demand: one that never answers, one
 * that answers garbage.
 */
export async function startServerEverything(logDir: string): Promise<{ url: string; process: ManagedProcess }> {
  const port = await freePort();
  const p = startProcess({
    name: 'mcp-server-everything',
    command: process.execPath,
    args: [join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'), 'streamableHttp'],
    env: { PORT: String(port) },
    logDir,
  });
  await waitForTcp(port, { process: p, timeoutMs: 30_000 });
  return { url: `http://127.0.0.1:${port}/mcp`, process: p };
}

export async function startKubernetesMcpServer(kubeconfig: string, logDir: string): Promise<{ url: string; process: ManagedProcess }> {
  const port = await freePort();
  const p = startProcess({
    name: 'kubernetes-mcp-server',
    command: join(REPO_ROOT, 'node_modules', '.bin', 'kubernetes-mcp-server'),
    args: ['--port', String(port), '--bind-address', '127.0.0.1', '--kubeconfig', kubeconfig, '--disable-multi-cluster'],
    logDir,
  });
  await waitForTcp(port, { process: p, timeoutMs: 30_000 });
  return { url: `http://127.0.0.1:${port}/mcp`, process: p };
}

/** Test double: an MCP endpoint that accepts requests and never answers (a hung server). */
export async function startHangingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  return listen(createServer(() => {}));
}

/** Test double: an MCP endpoint that answers every request 200 with an HTML page (a misrouted server). */
export async function startGarbageUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  return listen(
    createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>502 Bad Gateway</body></html>');
      });
    }),
  );
}

/** Test double: records the headers of what reaches it and answers each JSON-RPC request with an empty result. */
export async function startRecordingUpstream(): Promise<{ url: string; headers: Record<string, string | string[] | undefined>[]; close(): Promise<void> }> {
  const headers: Record<string, string | string[] | undefined>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      headers.push(req.headers);
      const id = (JSON.parse(Buffer.concat(chunks).toString() || '{}') as { id?: unknown }).id ?? null;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
    });
  });
  return { ...(await listen(server)), headers };
}

/** Listens on loopback; the URL is the server's /mcp endpoint, close() ends open connections too. */
export async function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
