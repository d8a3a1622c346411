import { createHmac } from 'node:crypto';
import type { AuditTrail } from '../../audit/audit-trail.js';
import type { Logger } from '../../shared/logger.js';
import type { ApprovalsConfig } from './approvals-config.js';
import { ApprovalGate } from './approval-gate.js';
import type { ApprovalStore } from './approval-store.js';
import { startApprovalsServer, type ApprovalsServer } from './approvals-server.js';
import { ApproverVerifier } from './approver-identity.js';
import type { ApprovalMetrics } from './approval-metrics.js';

export interface RunningApprovals {
  gate: ApprovalGate;
  server: ApprovalsServer;
  stop(): Promise<void>;
}

/** Wires the approvals store, the check path's gate and the approvers' endpoint from the `approvals` config. */
export async function startApprovals(o: { config: ApprovalsConfig; store: ApprovalStore; log: Logger; audit?: AuditTrail; decisionKey?: Buffer; metrics?: ApprovalMetrics }): Promise<RunningApprovals> {
  const verifier = await ApproverVerifier.load(o.config.approvers);
  const gate = new ApprovalGate({ store: o.store, ttlMs: o.config.ttl_seconds * 1000, publicUrl: o.config.public_url, ...(o.metrics ? { metrics: o.metrics } : {}) });
  const server = await startApprovalsServer({
    address: o.config.address,
    store: o.store,
    verifier,
    publicUrl: o.config.public_url,
    log: o.log,
    ...(o.audit ? { audit: o.audit } : {}),
    ...(o.metrics ? { metrics: o.metrics } : {}),
    // Every replica derives the same form key from the key they share, so a page from one is accepted by another.
    ...(o.decisionKey ? { csrfKey: createHmac('sha256', o.decisionKey).update('toolgate approvals form key').digest() } : {}),
  });
  o.log.info('approvals listening', { port: server.port, store: o.store.kind, public_url: o.config.public_url, ttl_seconds: o.config.ttl_seconds, approver_group: o.config.approvers.group });
  return {
    gate,
    server,
    stop: async () => {
      await server.close();
      await o.store.close();
    },
  };
}
