/**
 * The key, in ext_authz's dynamic metadata (namespace envoy.filters.http.ext_authz), under which an allowed
 * upstream `tools/list` carries its listing question ({mcp, agent, agent_id, source_principal}) to the
 * tools/list filter that Envoy calls (ext_proc) when the response comes back. Stateless: any authz replica
 * can filter any response.
 */
export const MCP_LISTING_METADATA_KEY = 'mcp_listing';
export const EXT_AUTHZ_METADATA_NAMESPACE = 'envoy.filters.http.ext_authz';
