import type { PolicyBundle } from './bundle.js';

/** Hands a bundle to the engine; rejects when the engine cannot use it (the source then keeps the old one). */
export type ActivateBundle = (bundle: PolicyBundle) => Promise<void>;

/** Told of a bundle the source fetched but could not read (so it never reached `activate`). */
export type BundleUnreadable = (err: unknown) => void;

export interface BundleSourceStatus {
  source: string;
  revision: string | undefined;
  digest: string | undefined;
  lastActivatedAt: string | undefined;
  lastError: string | undefined;
  fromCache: boolean;
}

/**
 * Where bundles come from. `start` resolves once a first bundle is active (or rejects with the reason none
 * could be), then keeps watching for new ones until `stop`.
 */
export interface BundleSource {
  start(activate: ActivateBundle, unreadable?: BundleUnreadable): Promise<void>;
  stop(): Promise<void>;
  status(): BundleSourceStatus;
}

/** Shared bookkeeping of the active bundle for every source. */
export class SourceState {
  revision: string | undefined;
  digest: string | undefined;
  lastActivatedAt: string | undefined;
  lastError: string | undefined;
  fromCache = false;

  constructor(readonly source: string) {}

  activated(bundle: PolicyBundle, fromCache: boolean): void {
    this.revision = bundle.revision;
    this.digest = bundle.digest;
    this.lastActivatedAt = new Date().toISOString();
    this.lastError = undefined;
    this.fromCache = fromCache;
  }

  snapshot(): BundleSourceStatus {
    return {
      source: this.source,
      revision: this.revision,
      digest: this.digest,
      lastActivatedAt: this.lastActivatedAt,
      lastError: this.lastError,
      fromCache: this.fromCache,
    };
  }
}
