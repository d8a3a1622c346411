import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { ApproverConfig } from './approvals-config.js';

export interface Approver {
  id: string;
  claims: JWTPayload;
}

/** Why a request to the approvers' endpoint is refused: 401 (who are you?) or 403 (not an approver). */
export class ApproverError extends Error {
  constructor(readonly httpStatus: 401 | 403, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Who is approving. Envoy's jwt_authn verified the token already; it is verified again here, with the same
 * keys, so that a request reaching this port some other way (it is the authz process's, not Envoy's) proves
 * nothing by its headers. Only the Authorization header counts: no cookies, so no cross-site request can
 * carry an approver's credentials.
 */
export class ApproverVerifier {
  private constructor(
    private readonly config: ApproverConfig,
    private readonly keys: ReturnType<typeof createLocalJWKSet>,
  ) {}

  static async load(config: ApproverConfig): Promise<ApproverVerifier> {
    const jwks = JSON.parse(await readFile(config.jwks_file, 'utf8')) as Parameters<typeof createLocalJWKSet>[0];
    return new ApproverVerifier(config, createLocalJWKSet(jwks));
  }

  async verify(authorization: string | undefined): Promise<Approver> {
    const m = /^Bearer ([A-Za-z0-9_.-]+)$/i.exec(authorization ?? '');
    if (!m) throw new ApproverError(401, 'unauthenticated', 'approvers authenticate with a JWT in the Authorization header (Bearer)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(m[1] as string, this.keys, { issuer: this.config.issuer, audience: this.config.audiences, requiredClaims: ['exp'] }));
    } catch (err) {
      throw new ApproverError(401, 'unauthenticated', `the approver's token is not valid: ${(err as Error).message}`);
    }
    const id = payload[this.config.id_claim];
    if (typeof id !== 'string' || id === '') throw new ApproverError(401, 'unauthenticated', `the approver's token has no "${this.config.id_claim}" claim`);
    const groups = payload[this.config.group_claim];
    const list = typeof groups === 'string' ? [groups] : Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [];
    if (!list.includes(this.config.group)) {
      throw new ApproverError(403, 'not_an_approver', `${id} is not in the approvers' group "${this.config.group}" (claim "${this.config.group_claim}")`);
    }
    return { id, claims: payload };
  }
}
