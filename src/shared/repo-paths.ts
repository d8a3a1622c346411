import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project root, found by walking up from this module to the directory holding `protos/`. Works the same
 * from `src/` (vitest), from `dist/src/` (compiled) and inside the container images, which keep that layout.
 */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'protos')) && existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('toolgate: cannot find the project root (a directory with protos/ and package.json)');
    dir = parent;
  }
}

export const REPO_ROOT = process.env.TOOLGATE_HOME ?? findRoot();
export const PROTOS_DIR = join(REPO_ROOT, 'protos');

/** toolgate's version (package.json), as servers report it (the MCP server's serverInfo). */
export async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
