import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  await aptInstall(debianPackage);
  const installed = await onPath(command);
  if (!installed) throw new Error(`${debianPackage} was installed but ${command} is not on PATH`);
  return installed;
}

/** A file a Debian package installs off PATH (e.g. CNI plugins under /usr/lib/cni): installs it when missing. */
export async function ensureDebianFile(path: string, debianPackage: string): Promise<string> {
  if (existsSync(path)) return path;
  process.stderr.write(`[toolchain] installing ${debianPackage} from Debian packages (for ${path})\n`);
  await aptInstall(debianPackage);
  if (!existsSync(path)) throw new Error(`${debianPackage} was installed but ${path} does not exist`);
  return path;
}

async function aptInstall(debianPackage: string): Promise<void> {
  // A fresh machine's package lists may be missing or stale: update once and try again.
  try {
    await run('apt-get', ['install', '-y', '-qq', debianPackage]);
  } catch {
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', debianPackage]);
  }
}
