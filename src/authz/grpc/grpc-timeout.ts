/**
 * The `grpc-timeout` request header (gRPC over HTTP/2): 1 to 8 ASCII digits and a unit, H M S m u n. Envoy's
 * ext_authz client sends its own timeout this way, so the server knows when an answer is no longer awaited.
 */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds the client will wait, or undefined when the header is absent; a malformed header is an error. */
export function parseGrpcTimeout(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  const m = /^(\d{1,8})([HMSmun])$/u.exec(text ?? '');
  if (!m) throw new Error(`grpc-timeout "${String(text)}" is not 1-8 digits and a unit (H M S m u n)`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
