import type { ToolCatalog } from '../catalog/tool-catalog.js';
import { ExecutorConfigError, type LocalPoolConfig } from './config.js';
import type { SandboxPoolSettings } from './runners/local-sandbox-runner.js';

/**
 * The executor config's `runner.pool`, checked against the catalog: a per-tool size for a tool the catalog
 * does not have is a typo that would silently leave that tool cold, so the executor refuses to start.
 */
export function sandboxPoolSettings(pool: LocalPoolConfig, catalog: ToolCatalog): SandboxPoolSettings {
  const unknown = Object.keys(pool.tools).filter((name) => !catalog.get(name));
  if (unknown.length > 0) {
    throw new ExecutorConfigError(`runner.pool.tools names tools that are not in the catalog: ${unknown.join(', ')} (catalog: ${catalog.names().join(', ')})`);
  }
  return { size: pool.size, tools: pool.tools, maxTotal: pool.max_total };
}
