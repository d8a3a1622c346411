import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * TEST DOUBLE for a Kubernetes Service in front of executor replicas (kube-proxy): each connection goes to
 * the next backend in turn, and to the one after when a backend refuses (a killed replica), as a Service
 * whose endpoints drop a dead pod would. On loopback, or the real node's bridge; a plain TCP relay, no HTTP awareness.
 */
export interface TcpBalancer {
  port: number;
  /** Connections relayed to each backend port. */
  counts(): Map<number, number>;
  close(): Promise<void>;
}

/** host: where it listens and its backends listen (default loopback; a real node's bridge address for pods). */
export async function startTcpBalancer(backendPorts: () => number[], host = '127.0.0.1'): Promise<TcpBalancer> {
  let next = 0;
  const counts = new Map<number, number>();
  const sockets = new Set<Socket>();
  const relay = (client: Socket, ports: number[], tries: number): void => {
    if (tries >= ports.length) {
      client.destroy();
      return;
    }
    const port = ports[next++ % ports.length] as number;
    const upstream = connect({ host, port });
    let connected = false;
    sockets.add(upstream);
    upstream.once('connect', () => {
      connected = true;
      counts.set(port, (counts.get(port) ?? 0) + 1);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      sockets.delete(upstream);
      if (err.code === 'ECONNREFUSED' && !connected) relay(client, ports, tries + 1);
      else client.destroy();
    });
    upstream.once('close', () => {
      sockets.delete(upstream);
      if (connected) client.destroy();
    });
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.pause();
    client.on('error', () => undefined);
    client.once('close', () => sockets.delete(client));
    relay(client, backendPorts(), 0);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    counts: () => new Map(counts),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
