import type { McpServerDefinition } from '../catalog/mcp-servers.js';

/**
 * The Envoy routes and clusters of the upstream MCP servers (src/catalog/mcp-servers.yaml), inserted into
 * envoy/toolgate.yaml at its `# @mcp-routes` and `# @mcp-clusters` lines. The Helm chart renders the same
 * shape in `_envoy-config.tpl` (toolgate.mcpRoutes / toolgate.mcpClusters); test/e2e checks both with Envoy.
 *
 * Per server, in match order:
 *   1. `tools/list` (the authz server marked the request with x-toolgate-mcp-method; ext_authz clears the route
 *      cache so the request is matched again): the response goes through ext_proc, which keeps only the tools
 *      this agent's policy lets it call;
 *   2. GET, the server's event stream: no deadline, an idle timeout;
 *   3. everything else (POST messages, DELETE): the server's timeout; ext_proc sees the response headers and
 *      a JSON answer's body, and turns an answer that is not a JSON-RPC response for the request into a
 *      JSON-RPC error naming the server (the answer check).
 * The upstream never sees toolgate's trusted headers (removed on the route, after the decision used them).
 * Envoy decides which filters a request's chain has from the route matched first (before ext_authz), so
 * every route of an upstream enables ext_proc; the GET route then switches it off.
 */
export const MCP_ROUTES_MARKER = /^([ \t]*)# @mcp-routes.*$/m;
export const MCP_CLUSTERS_MARKER = /^([ \t]*)# @mcp-clusters.*$/m;

export function mcpClusterName(server: string): string {
  return `mcp_${server.replaceAll('-', '_')}`;
}

const json = (v: unknown): string => JSON.stringify(v);

function authzExtensions(server: string): string[] {
  return [
    'typed_per_filter_config:',
    '  envoy.filters.http.ext_authz:',
    '    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
    '    check_settings:',
    `      context_extensions: { protocol: mcp, mcp_server: ${json(server)} }`,
  ];
}

/** On in the filter chain (FilterConfig), then on or off for this route (ExtProcPerRoute). */
function extProc(setting: string): string[] {
  return [
    '    envoy.filters.http.ext_proc:',
    '      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
    '      config:',
    '        "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute',
    `        ${setting}`,
  ];
}

/**
 * The answer check (src/authz/mcp-lists/upstream-answer-guard.ts): response headers only; the authz server
 * asks for the body (mode_override BUFFERED) of a JSON answer alone, so event streams are never buffered.
 */
const ANSWER_CHECK_MODE = 'overrides: { processing_mode: { request_header_mode: SKIP, response_header_mode: SEND, request_body_mode: NONE, response_body_mode: NONE, request_trailer_mode: SKIP, response_trailer_mode: SKIP } }';

const UPSTREAM_HIDDEN_HEADERS = ['x-toolgate-mcp-method', 'x-toolgate-visible-tools', 'x-toolgate-agent-id', 'x-toolgate-agent-auth', 'x-toolgate-attestation', 'x-toolgate-tool', 'x-toolgate-obligations'];

export function mcpRoutesYaml(servers: readonly McpServerDefinition[]): string[] {
  const lines: string[] = [];
  for (const s of servers) {
    const path = json(`/mcp/${s.name}`);
    const common = `cluster: ${mcpClusterName(s.name)}, prefix_rewrite: ${json(s.path)}, auto_host_rewrite: true`;
    const hidden = `request_headers_to_remove: ${json(UPSTREAM_HIDDEN_HEADERS)}`;
    lines.push(
      `- match: { path: ${path}, headers: [{ name: x-toolgate-mcp-method, string_match: { exact: tools/list } }] }`,
      `  route: { ${common}, timeout: ${s.timeout_seconds}s, idle_timeout: ${s.timeout_seconds + 10}s }`,
      `  ${hidden}`,
      ...authzExtensions(s.name).map((l) => `  ${l}`),
      ...extProc('overrides: {}'),
      `- match: { path: ${path}, headers: [{ name: ":method", string_match: { exact: GET } }] }`,
      `  route: { ${common}, timeout: 0s, idle_timeout: ${Math.max(s.timeout_seconds, 600)}s }`,
      `  ${hidden}`,
      ...authzExtensions(s.name).map((l) => `  ${l}`),
      ...extProc('disabled: true'),
      `- match: { path: ${path} }`,
      `  route: { ${common}, timeout: ${s.timeout_seconds}s, idle_timeout: ${s.timeout_seconds + 10}s }`,
      `  ${hidden}`,
      ...authzExtensions(s.name).map((l) => `  ${l}`),
      ...extProc(ANSWER_CHECK_MODE),
    );
  }
  return lines;
}

export function mcpClustersYaml(servers: readonly McpServerDefinition[]): string[] {
  const lines: string[] = [];
  for (const s of servers) {
    const name = mcpClusterName(s.name);
    lines.push(
      `- name: ${name}`,
      '  type: STRICT_DNS',
      `  connect_timeout: ${s.connect_timeout_seconds}s`,
      '  load_assignment:',
      `    cluster_name: ${name}`,
      '    endpoints:',
      '      - lb_endpoints:',
      // The Host the upstream sees (auto_host_rewrite) is the URL's authority, port included: servers that
      // guard against DNS rebinding (the Python SDK's) refuse a Host without it (421).
      `          - endpoint: { address: { socket_address: { address: ${json(s.host)}, port_value: ${s.port} } }, hostname: ${json(new URL(s.url).host)} }`,
    );
    if (s.scheme === 'https') {
      lines.push(
        '  transport_socket:',
        '    name: envoy.transport_sockets.tls',
        '    typed_config:',
        '      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        `      sni: ${json(s.host)}`,
      );
    }
  }
  return lines;
}

/** Replaces the marker lines of the template with the servers' routes and clusters, at the markers' indent. */
export function insertMcpServers(config: string, servers: readonly McpServerDefinition[]): string {
  const at = (text: string, marker: RegExp, block: string[]): string =>
    text.replace(marker, (_, indent: string) => (block.length === 0 ? `${indent}# (no upstream MCP servers registered)` : block.map((l) => indent + l).join('\n')));
  return at(at(config, MCP_ROUTES_MARKER, mcpRoutesYaml(servers)), MCP_CLUSTERS_MARKER, mcpClustersYaml(servers));
}
