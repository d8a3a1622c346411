import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';

/**
 * The internal hop from Envoy to the authz server, authenticated: TLS with a server certificate, and a client
 * certificate required from Envoy, both issued by the deployment's internal CA (the chart's, or the one
 * `npm run gateway` makes). Without it any process that reaches the port could ask for an attested allow.
 */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** The CA that issued the certificates of the only clients allowed (Envoy's). */
  clientCa: Buffer;
  /** When set, the client certificate must also name one of these (a URI or DNS SAN, e.g. spiffe://toolgate.internal/envoy). */
  clientNames?: readonly string[];
}

export type Http2Listener = http2.Http2Server | http2.Http2SecureServer;

export function createHttp2Listener(options: http2.ServerOptions, tls: ServerTls | undefined): Http2Listener {
  if (!tls) return http2.createServer(options);
  const server = http2.createSecureServer({
    ...options,
    cert: tls.cert,
    key: tls.key,
    ca: tls.clientCa,
    requestCert: true,
    rejectUnauthorized: true,
    // gRPC is HTTP/2 only: a client that cannot negotiate h2 is refused at the handshake.
    allowHTTP1: false,
    minVersion: 'TLSv1.2',
  });
  const names = tls.clientNames;
  if (names && names.length > 0) {
    server.on('secureConnection', (socket: TLSSocket) => {
      if (!subjectAltNames(socket).some((n) => names.includes(n))) socket.destroy();
    });
  }
  return server;
}

/** The URI and DNS SANs of the verified client certificate (Helm's genSignedCert can make only DNS ones). */
function subjectAltNames(socket: TLSSocket): string[] {
  const san = socket.getPeerCertificate().subjectaltname ?? '';
  return san
    .split(/,\s*/u)
    .filter((e) => e.startsWith('URI:') || e.startsWith('DNS:'))
    .map((e) => e.slice(e.indexOf(':') + 1));
}
