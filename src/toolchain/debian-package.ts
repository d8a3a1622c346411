import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function onPath(command: string): Promise<string> {
  return run('sh', ['-c', `command -v ${command}`]).then(
    (r) => r.stdout.trim(),
    () => '',
  );
}

/**
 * A command that comes from Debian's packages (apt-get as root, once): its path, installing the package
 * first when the command is not on PATH.
 */
export async function ensureDebianCommand(command: string, debianPackage: string): Promise<string> {
  const found = await onPath(command);
  if (found) return found;
  process.stderr.write(`[toolchain] installing ${debianPackage} from Debian packages (for ${command})\n`);
  try {
    await run('apt-get', ['install', '-y', '-qq', debianPackage]);
  } catch {
    // A fresh machine's package lists may be missing or stale.
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', debianPackage]);
  }
  const installed = await onPath(command);
  if (!installed) throw new Error(`${debianPackage} was installed but ${command} is not on PATH`);
  return installed;
}
