import { randomBytes } from 'node:crypto';
import { argumentsDigest } from '../../shared/digest.js';
import type { AgentIdentity } from '../input/agent-identity.js';
import type { ToolCall } from '../input/tool-call.js';
import type { ApprovalRequirement } from '../policy/approval-requirement.js';
import type { Approval, ApprovalBinding } from './approval.js';
import type { ApprovalStore, ClaimResult } from './approval-store.js';
import type { ApprovalMetrics } from './approval-metrics.js';

export interface ApprovalGateOptions {
  store: ApprovalStore;
  /** How long an approval request (and the approval granted on it) lives. */
  ttlMs: number;
  /** The approvers' page, as approvers reach it through Envoy (e.g. https://gateway.example/approvals/). */
  publicUrl: string;
  now?: () => number;
  metrics?: ApprovalMetrics;
}

/**
 * The check path's side of approvals: a call the policy allowed on condition of an approval runs only when an
 * approved, unused, unexpired approval of exactly that call (agent, tool, arguments digest, policy revision)
 * exists, and consumes it; otherwise the call is held and the agent is told where a person can approve it.
 */
export class ApprovalGate {
  constructor(private readonly opts: ApprovalGateOptions) {}

  get storeKind(): string {
    return this.opts.store.kind;
  }

  async hold(o: { agent: AgentIdentity; toolCall: ToolCall; revision: string; requirement: ApprovalRequirement; decisionId: string }): Promise<ClaimResult> {
    const now = this.opts.now?.() ?? Date.now();
    const binding: ApprovalBinding = { agent_id: o.agent.id, tool: o.toolCall.tool, arguments_digest: argumentsDigest(o.toolCall.arguments), policy_revision: o.revision };
    const fresh: Approval = {
      ...binding,
      id: newApprovalId(),
      status: 'pending',
      agent_auth: o.agent.method,
      arguments: o.toolCall.arguments,
      reasons: o.requirement.reasons,
      protocol: o.toolCall.protocol,
      requested_by_decision: o.decisionId,
      created_at: now,
      expires_at: now + this.opts.ttlMs,
    };
    let claim: ClaimResult;
    try {
      claim = await this.opts.store.claim(binding, fresh, o.decisionId, now);
    } catch (err) {
      this.opts.metrics?.count('unavailable');
      throw err;
    }
    const m = this.opts.metrics;
    if (claim.outcome === 'consumed') m?.count('consumed');
    else if (claim.outcome === 'rejected') m?.count('refused_rejected');
    else m?.count(claim.created ? 'requested' : 'waiting');
    return claim;
  }

  /** Where a person sees and decides this approval. */
  urlOf(id: string): string {
    return new URL(encodeURIComponent(id), this.opts.publicUrl.endsWith('/') ? this.opts.publicUrl : `${this.opts.publicUrl}/`).toString();
  }
}

function newApprovalId(): string {
  return `apr_${randomBytes(16).toString('base64url')}`;
}
