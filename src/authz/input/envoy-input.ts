import type { AttributeContext, Metadata, Peer } from '../grpc/check-types.js';
import { structToJson } from '../grpc/struct.js';

/**
 * The part of `input` that the OPA Envoy plugin builds from a v3 CheckRequest: `input.attributes` in
 * protobuf JSON names (lowerCamelCase, int64 as strings, empty fields omitted) plus `input.version`.
 * Keeping this identical is what lets policies written for the plugin run unchanged on toolgate.
 */
export type JsonObject = Record<string, unknown>;

export const INPUT_VERSION = Object.freeze({ ext_authz: 'v3', encoding: 'protojson' });

export function attributesToJson(attrs: AttributeContext, body: string | undefined): JsonObject {
  const out: JsonObject = {};
  const source = peerToJson(attrs.source);
  if (source) out.source = source;
  const destination = peerToJson(attrs.destination);
  if (destination) out.destination = destination;

  const request: JsonObject = {};
  const time = attrs.request?.time;
  if (time?.seconds !== undefined) request.time = timestampToRfc3339(time.seconds, time.nanos ?? 0);
  const h = attrs.request?.http;
  if (h) {
    const http: JsonObject = {};
    if (h.id) http.id = h.id;
    if (h.method) http.method = h.method;
    if (h.headers && Object.keys(h.headers).length > 0) http.headers = h.headers;
    if (h.path) http.path = h.path;
    if (h.host) http.host = h.host;
    if (h.scheme) http.scheme = h.scheme;
    if (h.size && h.size !== '0') http.size = h.size;
    if (h.protocol) http.protocol = h.protocol;
    // With pack_as_bytes Envoy sends raw_body; policies see the (strictly decoded) UTF-8 text as `body`,
    // which is what they were written against, rather than a base64 copy of the bytes.
    if (body) http.body = body;
    request.http = http;
  }
  if (Object.keys(request).length > 0) out.request = request;

  if (attrs.context_extensions && Object.keys(attrs.context_extensions).length > 0) {
    out.contextExtensions = attrs.context_extensions;
  }
  const metadata = metadataToJson(attrs.metadata_context);
  if (metadata) out.metadataContext = metadata;
  const routeMetadata = metadataToJson(attrs.route_metadata_context);
  if (routeMetadata) out.routeMetadataContext = routeMetadata;
  if (attrs.tls_session?.sni) out.tlsSession = { sni: attrs.tls_session.sni };
  return out;
}

function peerToJson(peer: Peer | undefined): JsonObject | undefined {
  if (!peer) return undefined;
  const out: JsonObject = {};
  const sa = peer.address?.socket_address;
  if (sa) {
    const socketAddress: JsonObject = {};
    if (sa.address) socketAddress.address = sa.address;
    if (sa.port_value) socketAddress.portValue = sa.port_value;
    if (sa.named_port) socketAddress.namedPort = sa.named_port;
    out.address = { socketAddress };
  } else if (peer.address?.pipe) {
    out.address = { pipe: { path: peer.address.pipe.path ?? '' } };
  }
  if (peer.service) out.service = peer.service;
  if (peer.labels && Object.keys(peer.labels).length > 0) out.labels = peer.labels;
  if (peer.principal) out.principal = peer.principal;
  if (peer.certificate) out.certificate = peer.certificate;
  return Object.keys(out).length > 0 ? out : undefined;
}

export function metadataToJson(md: Metadata | undefined): JsonObject | undefined {
  const fm = md?.filter_metadata;
  if (!fm) return undefined;
  const keys = Object.keys(fm);
  if (keys.length === 0) return undefined;
  const filterMetadata: JsonObject = {};
  for (const k of keys) filterMetadata[k] = structToJson(fm[k]);
  return { filterMetadata };
}

// Requests arrive many per second: the date part of each second is formatted once.
let lastSeconds = '';
let lastBase = '';

/** protojson's Timestamp format: RFC 3339, UTC, with 0, 3, 6 or 9 fractional digits. */
function timestampToRfc3339(seconds: string, nanos: number): string {
  if (seconds !== lastSeconds) {
    lastBase = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
    lastSeconds = seconds;
  }
  const base = lastBase;
  if (nanos === 0) return `${base}Z`;
  let frac = String(nanos).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${base}.${frac}Z`;
}
