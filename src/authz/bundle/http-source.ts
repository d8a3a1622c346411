import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, errorMessage, type Logger } from '../../shared/logger.js';
import { ServiceClient } from '../opa-config/service-client.js';
import { BundleError, parseBundleArchive, type PolicyBundle } from './bundle.js';
import { SourceState, type ActivateBundle, type BundleSource, type BundleUnreadable, type BundleSourceStatus } from './bundle-source.js';

export interface HttpBundleSourceOptions {
  url: string;
  headers?: Record<string, string>;
  /** An OPA service (credentials, client TLS, custom CA) and the bundle's resource on it (then `url` is theirs joined). */
  service?: { client: ServiceClient; resource: string };
  pollMinSeconds: number;
  pollMaxSeconds: number;
  cacheDir: string;
  timeoutMs: number;
}

/** A compressed bundle larger than this is refused before it is read (gunzip is bounded separately). */
const MAX_BUNDLE_BYTES = 128 * 1024 * 1024;

interface CacheMeta {
  etag: string | undefined;
  revision: string;
  url: string;
}

/**
 * A bundle served over HTTP, polled like OPA's bundle plugin: conditional GETs with the last ETag (304 means
 * unchanged) at a random interval in [min, max] so a fleet does not poll in lockstep. Every bundle that was
 * activated is persisted, so a restart while the server is unreachable still starts with the last good policy.
 * A broken or refused bundle is never persisted and never replaces the active one.
 */
export class HttpBundleSource implements BundleSource {
  private readonly state: SourceState;
  private timer: NodeJS.Timeout | undefined;
  private etag: string | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(
    private readonly opts: HttpBundleSourceOptions,
    log: Logger = createLogger('authz.bundle'),
  ) {
    this.state = new SourceState(opts.url);
    this.log = log;
    this.client = opts.service?.client ?? new ServiceClient({ name: 'bundle', url: opts.url, headers: {} });
    this.resource = opts.service?.resource ?? '';
  }

  private readonly client: ServiceClient;
  private readonly resource: string;

  private get bundlePath(): string {
    return join(this.opts.cacheDir, 'bundle.tar.gz');
  }

  private get metaPath(): string {
    return join(this.opts.cacheDir, 'bundle.json');
  }

  private unreadable: BundleUnreadable = () => undefined;

  async start(activate: ActivateBundle, unreadable?: BundleUnreadable): Promise<void> {
    this.stopped = false;
    if (unreadable) this.unreadable = unreadable;
    try {
      const changed = await this.fetchOnce(activate);
      if (!changed) throw new Error('server answered 304 without a previous bundle');
    } catch (err) {
      if (err instanceof BundleError) this.unreadable(err);
      const cause = errorMessage(err);
      const cached = await this.loadCache();
      if (!cached) throw new Error(`cannot load policy bundle from ${this.opts.url} (${cause}) and no cached bundle in ${this.opts.cacheDir}`);
      await activate(cached.bundle);
      this.etag = cached.meta.etag;
      this.state.activated(cached.bundle, true);
      this.state.lastError = cause;
      this.log.warn('bundle server unreachable; started from the cached bundle', { url: this.opts.url, revision: cached.bundle.revision, cause });
    }
    this.schedule(activate);
  }

  private schedule(activate: ActivateBundle): void {
    if (this.stopped) return;
    const { pollMinSeconds: min, pollMaxSeconds: max } = this.opts;
    const delayMs = (min + Math.random() * Math.max(0, max - min)) * 1000;
    this.timer = setTimeout(() => {
      this.fetchOnce(activate)
        .catch((err: unknown) => {
          if (err instanceof BundleError) this.unreadable(err);
          this.state.lastError = errorMessage(err);
          this.log.error('policy bundle update failed; keeping the active bundle', { url: this.opts.url, active_revision: this.state.revision, cause: this.state.lastError });
        })
        .finally(() => this.schedule(activate));
    }, delayMs);
    this.timer.unref();
  }

  /** One conditional GET; true when a new bundle was activated. Throws on any failure. */
  private async fetchOnce(activate: ActivateBundle): Promise<boolean> {
    const headers: Record<string, string> = { ...this.opts.headers };
    if (this.etag) headers['if-none-match'] = this.etag;
    const res = await this.client.request({ method: 'GET', resource: this.resource, headers, timeoutMs: this.opts.timeoutMs, maxBytes: MAX_BUNDLE_BYTES }).catch((err: unknown) => {
      throw new Error(`unreachable: ${errorMessage(err)}`);
    });
    if (res.status === 304) return false;
    if (res.status < 200 || res.status > 299) throw new Error(`bundle server answered ${res.status}`);
    const bytes = res.body;
    const bundle = await parseBundleArchive(bytes);
    const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
    if (bundle.digest === this.state.digest) {
      this.etag = etag;
      return false;
    }
    await activate(bundle);
    this.etag = etag;
    this.state.activated(bundle, false);
    await this.persist(bytes, { etag, revision: bundle.revision, url: this.opts.url }).catch((err: unknown) => {
      this.log.warn('could not cache the policy bundle', { dir: this.opts.cacheDir, cause: errorMessage(err) });
    });
    return true;
  }

  private async persist(bytes: Buffer, meta: CacheMeta): Promise<void> {
    await mkdir(this.opts.cacheDir, { recursive: true });
    const tmp = `${this.bundlePath}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, this.bundlePath);
    const tmpMeta = `${this.metaPath}.${process.pid}.tmp`;
    await writeFile(tmpMeta, JSON.stringify(meta));
    await rename(tmpMeta, this.metaPath);
  }

  private async loadCache(): Promise<{ bundle: PolicyBundle; meta: CacheMeta } | undefined> {
    try {
      const [bytes, metaText] = await Promise.all([readFile(this.bundlePath), readFile(this.metaPath, 'utf8')]);
      return { bundle: await parseBundleArchive(bytes), meta: JSON.parse(metaText) as CacheMeta };
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client.close();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  status(): BundleSourceStatus {
    return this.state.snapshot();
  }
}
