/**
 * The floor of the check path's hop, for the benchmark only: an ext_authz gRPC server on node:http2 that
 * allows every request without looking at it (no decoding, no input, no policy). Behind the same Envoy it
 * measures what the round trip itself costs a Node server on this machine, so the table separates the cost
 * of the hop from the cost of toolgate's work.
 *
 *   node dist/bench/lib/allow-all-authz.js <port>
 */
import http2 from 'node:http2';

// CheckResponse { status: { code: 0 } }, length-prefixed.
const OK_MESSAGE = Buffer.from([0, 0, 0, 0, 4, 0x0a, 0x02, 0x08, 0x00]);
const HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

const server = http2.createServer();
server.on('stream', (stream) => {
  stream.on('error', () => stream.destroy());
  stream.resume();
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond(HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(OK_MESSAGE);
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
