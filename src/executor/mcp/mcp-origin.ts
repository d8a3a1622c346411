/**
 * DNS-rebinding protection (MCP: servers must validate Origin). Agents are programs and send no Origin; a
 * browser always does. A request with an Origin is served only when that origin is allowed by configuration
 * (`mcp.allowed_origins`), or when both the Origin and the Host name this machine's loopback (a local tool such
 * as an inspector talking to `npm run gateway`). A page on another site whose name was rebound to the gateway's
 * address sends its own name in both and is refused, before any authorization is looked at.
 */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (allowed.includes(origin)) return true;
  let originHost: string;
  try {
    originHost = new URL(origin).hostname;
  } catch {
    return false;
  }
  return LOOPBACK.has(originHost) && host !== undefined && LOOPBACK.has(hostName(host));
}

function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
