import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * An image without a registry: a rootfs directory as a single-layer OCI image archive (oci-layout,
 * index.json naming the image, one uncompressed layer), importable with `ctr -n k8s.io image import`.
 * Uncompressed because it is imported once, locally: gzip would cost more than it saves.
 */
export async function writeOciArchive(opts: { name: string; rootfs: string; out: string; entrypoint: string[]; user?: string; env?: string[] }): Promise<void> {
  const work = await mkdtemp(`${opts.out}.build-`);
  try {
    const blobs = join(work, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const layer = join(work, 'layer.tar');
    await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', opts.rootfs, '-cf', layer, '.'], { maxBuffer: 16 * 1024 * 1024 });
    const layerDigest = await sha256File(layer);
    const layerSize = (await stat(layer)).size;
    await rename(layer, join(blobs, layerDigest));
    const blob = async (content: string): Promise<{ digest: string; size: number }> => {
      const digest = createHash('sha256').update(content).digest('hex');
      await writeFile(join(blobs, digest), content);
      return { digest: `sha256:${digest}`, size: Buffer.byteLength(content) };
    };
    const config = await blob(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', ...(opts.env ?? [])], Entrypoint: opts.entrypoint, WorkingDir: '/', ...(opts.user ? { User: opts.user } : {}) },
        rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
      }),
    );
    const manifest = await blob(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize }],
      }),
    );
    const tag = opts.name.slice(opts.name.lastIndexOf(':') + 1);
    await writeFile(
      join(work, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { architecture: 'amd64', os: 'linux' }, annotations: { 'io.containerd.image.name': opts.name, 'org.opencontainers.image.ref.name': tag } }],
      }),
    );
    await writeFile(join(work, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await run('tar', ['-C', work, '-cf', opts.out, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
