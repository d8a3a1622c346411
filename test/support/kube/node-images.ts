import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';
import { writeOciArchive } from './oci-archive.js';

const run = promisify(execFile);

/** The pod sandbox image containerd is configured with (`sandbox_image`): busybox sleeping. */
export const PAUSE_IMAGE = 'localhost/toolgate-pause:local';
/** The tool runner, built from this checkout. `localhost/`: were it ever missing, a pull goes to loopback only. */
export const RUNNER_IMAGE = 'localhost/toolgate-runner:local';
/** Where src/runner/Dockerfile's image has node and the runner: the Job command is the same for both. */
export const RUNNER_COMMAND = ['/nodejs/bin/node', '/app/dist/src/runner/main.js'];

/** busybox-static running `sleep`: a pause process that costs ~100 KiB per pod. */
export async function buildPauseImage(busybox: string, out: string): Promise<void> {
  const root = await mkdtemp(`${out}.rootfs-`);
  try {
    await mkdir(join(root, 'bin'));
    await cp(busybox, join(root, 'bin', 'busybox'));
    await writeOciArchive({ name: PAUSE_IMAGE, rootfs: root, out, entrypoint: ['/bin/busybox', 'sleep', '2147483647'] });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The equivalent of src/runner/Dockerfile's image from the local build (`npm run build` first), without a
 * registry or a container builder: this machine's node and the shared libraries it links, the production
 * dependencies (`npm ls --omit=dev`) and dist/, user 65532. Same paths as the Dockerfile's distroless image.
 */
export async function buildRunnerImage(out: string): Promise<void> {
  const root = await mkdtemp(`${out}.rootfs-`);
  try {
    const node = process.execPath;
    await mkdir(join(root, 'nodejs', 'bin'), { recursive: true });
    await cp(node, join(root, 'nodejs', 'bin', 'node'));
    const { stdout: ldd } = await run('ldd', [node]);
    for (const lib of ldd.matchAll(/(\/\S+) \(0x/g)) {
      const path = lib[1] as string;
      await mkdir(join(root, dirname(path)), { recursive: true });
      await cp(path, join(root, path), { dereference: true });
    }
    const app = join(root, 'app');
    await mkdir(app);
    await cp(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    await cp(join(REPO_ROOT, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true });
    const { stdout: deps } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    for (const dir of new Set(deps.split('\n').filter((l) => l.startsWith(join(REPO_ROOT, 'node_modules'))))) {
      await cp(dir, join(app, dir.slice(REPO_ROOT.length + 1)), { recursive: true, dereference: true });
    }
    await mkdir(join(root, 'tmp'));
    await chmod(join(root, 'tmp'), 0o1777);
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnonroot:x:65532:\n');
    await writeOciArchive({ name: RUNNER_IMAGE, rootfs: root, out, entrypoint: RUNNER_COMMAND, user: '65532:65532', env: ['NODE_ENV=production'] });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
