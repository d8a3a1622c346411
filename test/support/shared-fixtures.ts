import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';

/**
 * A third-party fixture from the shared directory beside the checkout (`../shared/fixtures/...`; for a
 * worktree one level deeper, `../../shared/fixtures/...`). Read in place, never copied into the project.
 * Undefined when the fixture is absent, so a test can skip with the reason.
 */
export function sharedFixture(relPath: string): string | undefined {
  const candidates = [join(REPO_ROOT, '..', 'shared', 'fixtures', relPath), join(REPO_ROOT, '..', '..', 'shared', 'fixtures', relPath)];
  return candidates.find((p) => existsSync(p));
}
