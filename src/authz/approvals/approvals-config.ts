/** The `approvals` section of the authz config: where approvers reach the page, who they are, how long approvals live. */
export interface ApprovalsConfig {
  /** The approvers' HTTP listener of this authz process (Envoy routes /approvals/ here). */
  address: string;
  /** The page as approvers reach it through Envoy; the URL agents are given is this plus the approval id. */
  public_url: string;
  /** How long an approval request, and the approval granted on it, lives. */
  ttl_seconds: number;
  approvers: ApproverConfig;
}

export interface ApproverConfig {
  /** The claim listing the approver's groups (a string or a list of strings). */
  group_claim: string;
  /** Membership of this group makes an identity an approver. */
  group: string;
  /** The approver's token is verified again here (Envoy verified it first): the keys, issuer and audiences. */
  jwks_file: string;
  issuer: string;
  audiences: string[];
  /** The claim naming the approver (the same claim names agents: an agent can never approve its own call). */
  id_claim: string;
}

export const APPROVALS_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'public_url', 'approvers'],
  properties: {
    address: { type: 'string', minLength: 3 },
    public_url: { type: 'string', pattern: '^https?://' },
    ttl_seconds: { type: 'integer', minimum: 1, maximum: 7 * 24 * 3600 },
    approvers: {
      type: 'object',
      additionalProperties: false,
      required: ['group', 'jwks_file', 'issuer', 'audiences'],
      properties: {
        group_claim: { type: 'string', minLength: 1 },
        group: { type: 'string', minLength: 1 },
        jwks_file: { type: 'string', minLength: 1 },
        issuer: { type: 'string', minLength: 1 },
        audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
        id_claim: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;

type RawApprovals = Omit<ApprovalsConfig, 'ttl_seconds' | 'approvers'> & { ttl_seconds?: number; approvers: Omit<ApproverConfig, 'group_claim' | 'id_claim'> & { group_claim?: string; id_claim?: string } };

/** Defaults and paths (`rel` resolves against the config file); the agent-id claim is the approver-id claim unless set. */
export function resolveApprovalsConfig(raw: RawApprovals, rel: (p: string) => string, agentIdClaim: string): ApprovalsConfig {
  return {
    address: raw.address,
    public_url: raw.public_url,
    ttl_seconds: raw.ttl_seconds ?? 900,
    approvers: {
      group_claim: raw.approvers.group_claim ?? 'groups',
      group: raw.approvers.group,
      jwks_file: rel(raw.approvers.jwks_file),
      issuer: raw.approvers.issuer,
      audiences: raw.approvers.audiences,
      id_claim: raw.approvers.id_claim ?? agentIdClaim,
    },
  };
}
