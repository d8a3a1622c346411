import { errorMessage, type Logger } from '../../shared/logger.js';
import { BundleError, type PolicyBundle } from './bundle.js';
import type { ActivateBundle } from './bundle-source.js';
import { BundleEvaluationError } from './pre-activation.js';
import { BundleSignatureError, SIGNATURES_FILE } from './signature-verification.js';

export type RejectionReason = 'corrupt' | 'signature' | 'evaluation' | 'engine';

export interface ActivationGateOptions {
  /** Signature verification (absent: bundles need no signature). */
  verify?: (bundle: PolicyBundle) => Promise<void>;
  /** Pre-activation evaluation; resolves with how many inputs were evaluated. */
  evaluate?: (bundle: PolicyBundle) => Promise<number>;
  /** Hands the bundle to the engine that answers checks. */
  activate: (bundle: PolicyBundle) => Promise<void>;
  activated?: (bundle: PolicyBundle) => void;
  rejected?: (reason: RejectionReason, bundle: PolicyBundle | undefined, cause: string) => void;
  log: Logger;
}

/**
 * Every bundle passes the same gate before it decides anything: signature, then evaluation on example and
 * recorded inputs, then the engine's own load. A refusal at any step leaves the active bundle serving; the
 * source then neither records it as active nor caches it as last good (it only does so once this resolves).
 */
export class ActivationGate {
  /** Refusals already counted here, so a source reporting the same error back does not count it twice. */
  private readonly counted = new WeakSet<object>();

  constructor(private readonly opts: ActivationGateOptions) {}

  readonly activate: ActivateBundle = async (bundle) => {
    let evaluated = 0;
    try {
      await this.opts.verify?.(bundle);
      evaluated = (await this.opts.evaluate?.(bundle)) ?? 0;
      await this.opts.activate(bundle);
    } catch (err) {
      this.refused(err, bundle);
      throw err;
    }
    this.opts.activated?.(bundle);
    this.opts.log.info('policy bundle activated', { revision: bundle.revision, digest: bundle.digest, roots: bundle.roots, signed: bundle.files.has(SIGNATURES_FILE), inputs_evaluated: evaluated });
  };

  /** A bundle a source could not even read (not a tarball, bad data, escaping paths). */
  readonly unreadable = (err: unknown): void => {
    if (err instanceof BundleError && !this.counted.has(err)) this.refused(err, undefined);
  };

  private refused(err: unknown, bundle: PolicyBundle | undefined): void {
    if (err !== null && typeof err === 'object') this.counted.add(err);
    const reason = rejectionReason(err);
    const cause = errorMessage(err);
    this.opts.rejected?.(reason, bundle, cause);
    this.opts.log.error('policy bundle refused; keeping the active one', { reason, revision: bundle?.revision, digest: bundle?.digest, cause });
  }
}

export function rejectionReason(err: unknown): RejectionReason {
  if (err instanceof BundleSignatureError) return 'signature';
  if (err instanceof BundleEvaluationError) return 'evaluation';
  if (err instanceof BundleError) return 'corrupt';
  return 'engine';
}
