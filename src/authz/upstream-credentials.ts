import { readFile } from 'node:fs/promises';
import type { McpServerRegistry } from '../catalog/mcp-servers.js';

/**
 * The credentials toolgate presents to upstream MCP servers, read once at start from the environment or a
 * file named in the registry. They are set on an allowed request by the authz server (never by the agent:
 * the agent's own Authorization header is removed, as the MCP spec forbids passing a client's token on).
 */
export type UpstreamCredentialValues = ReadonlyMap<string, { header: string; value: string }>;

export class UpstreamCredentialError extends Error {}

export async function loadUpstreamCredentials(registry: McpServerRegistry, env: NodeJS.ProcessEnv = process.env): Promise<UpstreamCredentialValues> {
  const out = new Map<string, { header: string; value: string }>();
  for (const s of registry.all()) {
    const c = s.credentials;
    if (!c) continue;
    let value: string | undefined;
    if (c.value_env) {
      value = env[c.value_env];
      if (!value) throw new UpstreamCredentialError(`MCP server "${s.name}": environment variable ${c.value_env} (its credentials) is not set`);
    } else if (c.value_file) {
      try {
        value = (await readFile(c.value_file, 'utf8')).trim();
      } catch (err) {
        throw new UpstreamCredentialError(`MCP server "${s.name}": cannot read its credentials file ${c.value_file}: ${(err as Error).message}`);
      }
    }
    if (!value) throw new UpstreamCredentialError(`MCP server "${s.name}": its credentials are empty`);
    out.set(s.name, { header: c.header.toLowerCase(), value });
  }
  return out;
}
