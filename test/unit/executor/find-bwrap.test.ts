import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBwrap } from '../../../src/executor/runners/sandbox/find-bwrap.js';

describe('findBwrap (the local runner checks for bubblewrap at start)', () => {
  it('finds the first executable bwrap on PATH, skipping non-executable and relative entries', async () => {
    const [plain, exec] = [await mkdtemp(join(tmpdir(), 'bwrap-plain-')), await mkdtemp(join(tmpdir(), 'bwrap-exec-'))];
    await writeFile(join(plain, 'bwrap'), '#!/bin/sh\n');
    await writeFile(join(exec, 'bwrap'), '#!/bin/sh\n');
    await chmod(join(exec, 'bwrap'), 0o755);
    expect(findBwrap(['relative/dir', plain, exec].join(delimiter))).toBe(join(exec, 'bwrap'));
  });

  it('refuses with what is missing and how to install it', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'bwrap-none-'));
    expect(() => findBwrap(empty)).toThrow(/needs bubblewrap.*no executable bwrap was found on PATH.*npm run tools bubblewrap/);
    expect(() => findBwrap('')).toThrow(/found on PATH \(\)/);
  });
});
