import { stat } from 'node:fs/promises';
import { createLogger, errorMessage, type Logger } from '../../shared/logger.js';
import { BundleError, loadBundleFile } from './bundle.js';
import { SourceState, type ActivateBundle, type BundleSource, type BundleUnreadable, type BundleSourceStatus } from './bundle-source.js';

/**
 * A bundle on disk (a .tar.gz from `opa build`, or an unpacked bundle directory), re-read when it changes.
 * Cheap change detection (size + mtime) gates the expensive one (the content digest).
 */
export class FileBundleSource implements BundleSource {
  private readonly state: SourceState;
  private timer: NodeJS.Timeout | undefined;
  private lastStamp = '';
  private readonly log: Logger;

  constructor(
    private readonly path: string,
    private readonly opts: { pollIntervalMs: number } = { pollIntervalMs: 1000 },
    log: Logger = createLogger('authz.bundle'),
  ) {
    this.state = new SourceState(`file:${path}`);
    this.log = log;
  }

  private unreadable: BundleUnreadable = () => undefined;

  async start(activate: ActivateBundle, unreadable?: BundleUnreadable): Promise<void> {
    if (unreadable) this.unreadable = unreadable;
    this.lastStamp = await this.stamp();
    const bundle = await loadBundleFile(this.path).catch((err: unknown) => {
      this.unreadable(err);
      throw new Error(`cannot load policy bundle ${this.path}: ${errorMessage(err)}`);
    });
    await activate(bundle);
    this.state.activated(bundle, false);
    this.timer = setInterval(() => void this.poll(activate), this.opts.pollIntervalMs);
    this.timer.unref();
  }

  private async stamp(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  private polling = false;
  private async poll(activate: ActivateBundle): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const stamp = await this.stamp();
      if (stamp === this.lastStamp) return;
      this.lastStamp = stamp;
      const bundle = await loadBundleFile(this.path);
      if (bundle.digest === this.state.digest) return;
      await activate(bundle);
      this.state.activated(bundle, false);
    } catch (err) {
      if (err instanceof BundleError) this.unreadable(err);
      this.state.lastError = errorMessage(err);
      this.log.error('policy bundle update rejected; keeping the active bundle', { source: this.state.source, active_revision: this.state.revision, cause: this.state.lastError });
    } finally {
      this.polling = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): BundleSourceStatus {
    return this.state.snapshot();
  }
}
