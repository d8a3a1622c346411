/**
 * What an MCP client needs to reach the gateway's /mcp as a development agent, in the `mcpServers` shape most
 * MCP clients read (a Streamable HTTP server: its URL and the headers to send). The token is the agent's dev
 * JWT for the gateway's MCP resource (audience = the /mcp URL), valid a day: paste and go.
 */
export interface McpClientConfig {
  mcpServers: Record<string, { type: 'http'; url: string; headers: Record<string, string> }>;
}

export function mcpClientConfig(url: string, token: string): McpClientConfig {
  return { mcpServers: { toolgate: { type: 'http', url, headers: { Authorization: `Bearer ${token}` } } } };
}
