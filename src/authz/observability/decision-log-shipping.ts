import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, errorMessage, type Logger } from '../../shared/logger.js';
import { REPO_ROOT } from '../../shared/repo-paths.js';
import type { DecisionObserver } from '../check-service.js';
import type { AuthzConfig, DecisionLogsConfig } from '../config.js';
import { ServiceClient } from '../opa-config/service-client.js';
import { DecisionLogMask } from './decision-log-mask.js';
import { DecisionLogShipper } from './decision-log-shipper.js';
import type { AuthzMetrics } from './metrics.js';

export interface DecisionLogShipping {
  mask: DecisionLogMask;
  observe: DecisionObserver;
  shipper: DecisionLogShipper;
  stop(): Promise<void>;
}

/** Wires OPA-format decision logs from the configuration: mask, shipper, and the observer the check service calls. */
export function startDecisionLogShipping(config: AuthzConfig, metrics: AuthzMetrics, log: Logger): DecisionLogShipping {
  const d = config.decision_logs as DecisionLogsConfig;
  const mask = new DecisionLogMask(d.maskDecision.replace(/^\/+/, ''), (d.dropDecision ?? 'system/log/drop').replace(/^\/+/, ''));
  const shipper = new DecisionLogShipper({
    config: d,
    client: d.target ? new ServiceClient(d.target) : undefined,
    decisionPath: config.policy.decision,
    bundleName: config.policy.bundle_name ?? 'toolgate',
    mask,
    metrics: { events: metrics.decisionLogEvents, uploads: metrics.decisionLogUploads, buffered: metrics.decisionLogBuffered },
    log: log.child('decision_logs'),
    console: createLogger('decision_logs'),
    version: `toolgate-${packageVersion()}`,
  });
  shipper.start();
  return {
    mask,
    shipper,
    observe: (record, input, result, inputJson) => {
      try {
        shipper.add(record, input, result, requestedBy(input), inputJson?.byteLength ?? 0);
      } catch (err) {
        log.error('decision log event could not be built', { decision_id: record.decision_id, cause: errorMessage(err) });
      }
    },
    stop: () => shipper.stop(),
  };
}

/** The downstream peer Envoy reported (input.attributes.source.address), as OPA's plugin would name it. */
function requestedBy(input: Record<string, unknown> | undefined): string {
  const sa = ((((input?.attributes as Record<string, unknown> | undefined)?.source as Record<string, unknown> | undefined)?.address as Record<string, unknown> | undefined)?.socketAddress ?? undefined) as
    | { address?: string; portValue?: number }
    | undefined;
  return sa?.address ? `${sa.address}:${sa.portValue ?? 0}` : '';
}

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0';
    } catch {
      version = '0';
    }
  }
  return version;
}
