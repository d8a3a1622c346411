import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** bubblewrap isolates each local tool call; it comes from Debian's packages (apt-get as root, once). */
export async function ensureBubblewrap(): Promise<string> {
  const found = await run('sh', ['-c', 'command -v bwrap']).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  if (found) return found;
  process.stderr.write('[toolchain] installing bubblewrap from Debian packages\n');
  try {
    await run('apt-get', ['install', '-y', '-qq', 'bubblewrap']);
  } catch {
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', 'bubblewrap']);
  }
  return (await run('sh', ['-c', 'command -v bwrap'])).stdout.trim();
}
