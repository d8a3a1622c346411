import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * Where the bubblewrap binary is, checked once at start: without it every local call would fail, so the
 * executor refuses to start and says how to install it rather than answering 502 call after call.
 */
export function findBwrap(pathEnv: string | undefined = process.env.PATH): string {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, 'bwrap');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here (or not executable): try the next one
    }
  }
  throw new Error(`the local runner needs bubblewrap, and no executable bwrap was found on PATH (${pathEnv ?? ''}); install it with \`npm run tools bubblewrap\` or \`apt-get install bubblewrap\``);
}
