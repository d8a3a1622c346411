import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from './mcp-upstreams.js';

/**
 * Test double: an MCP endpoint (Streamable HTTP, JSON answers) that answers initialize, tools/list and good
 * calls as a server should, and answers garbage on demand, since no real server does so when asked. The kind
 * of garbage is the tools/call argument `answer`, or the resources/read URI's last segment:
 *   good, stream (the good answer as an event stream), html, not-json, not-jsonrpc, wrong-id, empty,
 *   server-error-text, rpc-error, batch, accepted, stream-without-response (a notification, then the end),
 *   slow (the good answer after 1.5 s).
 * The notification notifications/roots/list_changed gets a 500 text/plain.
 */
export type GarbageKind = 'good' | 'stream' | 'stream-without-response' | 'html' | 'not-json' | 'not-jsonrpc' | 'wrong-id' | 'empty' | 'server-error-text' | 'rpc-error' | 'batch' | 'accepted' | 'slow';

export async function startGarbageMcpUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  return listen(server);
}

function answer(req: IncomingMessage, res: ServerResponse, text: string): void {
  if (req.method !== 'POST') return void res.writeHead(405).end();
  const msg = JSON.parse(text || '{}') as { id?: string | number; method?: string; params?: Record<string, unknown> };
  const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const result = (r: unknown): void => json(200, { jsonrpc: '2.0', id: msg.id, result: r });
  if (msg.id === undefined) {
    if (msg.method === 'notifications/roots/list_changed') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
    return void res.writeHead(202).end();
  }
  switch (msg.method) {
    case 'initialize':
      return result({ protocolVersion: (msg.params?.protocolVersion as string) ?? '2025-06-18', capabilities: { tools: {}, resources: {} }, serverInfo: { name: 'garbage-double', version: '0' } });
    case 'tools/list':
      return result({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }] });
    case 'tools/call':
      return garbage(String((msg.params?.arguments as Record<string, unknown> | undefined)?.answer ?? 'good'), msg.id, res, () => result({ content: [{ type: 'text', text: 'good answer' }] }));
    case 'resources/read': {
      const uri = String(msg.params?.uri ?? '');
      return garbage(uri.split('/').pop() ?? 'good', msg.id, res, () => result({ contents: [{ uri, text: 'good resource' }] }));
    }
    default:
      return json(200, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } });
  }
}

function garbage(kind: string, id: string | number, res: ServerResponse, good: () => void): void {
  const send = (status: number, type: string | undefined, body: string): void => void res.writeHead(status, type ? { 'content-type': type } : {}).end(body);
  switch (kind as GarbageKind) {
    case 'stream':
      return send(200, 'text/event-stream', `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'good answer' }] } })}\n\n`);
    case 'stream-without-response':
      return send(200, 'text/event-stream', `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
    case 'html':
      return send(200, 'text/html', '<html><body>502 Bad Gateway</body></html>');
    case 'not-json':
      return send(200, 'application/json', '{"jsonrpc": "2.0", "id": ');
    case 'not-jsonrpc':
      return send(200, 'application/json', '{"status":"ok"}');
    case 'wrong-id':
      return send(200, 'application/json', JSON.stringify({ jsonrpc: '2.0', id: typeof id === 'number' ? id + 1000 : `${id}-other`, result: { content: [] } }));
    case 'empty':
      return send(200, 'application/json', '');
    case 'server-error-text':
      return send(500, 'text/plain', 'Internal Server Error');
    case 'rpc-error':
      return send(200, 'application/json', JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message: 'the upstream says no' } }));
    case 'batch':
      return send(200, 'application/json', JSON.stringify([{ jsonrpc: '2.0', id, result: { content: [] } }]));
    case 'accepted':
      return send(202, undefined, '');
    case 'slow':
      // The good answer, 1.5 s late: time for a test to stop the authz server before it is checked.
      return void setTimeout(good, 1500);
    default:
      return good();
  }
}
