import type { JsonObject } from './envoy-input.js';

/**
 * Who is calling, and how that was proven. Only two sources are trusted, both established by Envoy before
 * the check: the mTLS peer principal (Envoy takes it from the verified client certificate, a SPIFFE ID when
 * the certificate has a URI SAN) and the payload of a JWT that Envoy's jwt_authn filter verified (dynamic
 * metadata). Request headers are never consulted: a client can set any header it likes.
 */
export interface AgentIdentity {
  id: string;
  method: 'jwt' | 'mtls';
  /** The mTLS peer principal when the connection had a verified client certificate. */
  principal?: string;
  spiffe_id?: string;
  trust_domain?: string;
  /** Verified JWT claims (jwt method only). */
  claims?: JsonObject;
  issuer?: string;
}

export interface IdentityOptions {
  /** Dynamic metadata namespace of the jwt_authn filter. */
  jwtMetadataNamespace: string;
  /** Keys under that namespace where jwt_authn stores verified payloads (`payload_in_metadata`). */
  jwtPayloadKeys: string[];
  /** The claim that names the agent. */
  agentIdClaim: string;
}

export const DEFAULT_IDENTITY_OPTIONS: IdentityOptions = {
  jwtMetadataNamespace: 'envoy.filters.http.jwt_authn',
  jwtPayloadKeys: ['jwt_payload'],
  agentIdClaim: 'sub',
};

export function resolveAgentIdentity(
  principal: string | undefined,
  filterMetadata: JsonObject | undefined,
  opts: IdentityOptions,
): AgentIdentity | undefined {
  const mtls = principal ? mtlsFields(principal) : undefined;
  const claims = verifiedJwtPayload(filterMetadata, opts);
  if (claims) {
    const id = claims[opts.agentIdClaim];
    if (typeof id === 'string' && id !== '') {
      const identity: AgentIdentity = { id, method: 'jwt', claims, ...mtls };
      if (typeof claims.iss === 'string') identity.issuer = claims.iss;
      return identity;
    }
  }
  if (mtls) return { id: principal as string, method: 'mtls', ...mtls };
  return undefined;
}

function mtlsFields(principal: string): Pick<AgentIdentity, 'principal' | 'spiffe_id' | 'trust_domain'> {
  if (!principal.startsWith('spiffe://')) return { principal };
  const rest = principal.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return { principal, spiffe_id: principal, trust_domain: slash === -1 ? rest : rest.slice(0, slash) };
}

function verifiedJwtPayload(filterMetadata: JsonObject | undefined, opts: IdentityOptions): JsonObject | undefined {
  const ns = filterMetadata?.[opts.jwtMetadataNamespace];
  if (!ns || typeof ns !== 'object') return undefined;
  for (const key of opts.jwtPayloadKeys) {
    const payload = (ns as JsonObject)[key];
    if (payload && typeof payload === 'object' && !Array.isArray(payload)) return payload as JsonObject;
  }
  return undefined;
}

/**
 * Why jwt_authn refused a presented token, when a route lets refused tokens through to be answered here
 * (MCP: `failed_status_in_metadata`, so that the agent gets a 401 with the cause rather than Envoy's 403).
 * A refused token is never ignored: whatever else identifies the caller, the request is refused.
 */
export const JWT_FAILURE_METADATA_KEY = 'jwt_failure';

export function refusedJwt(filterMetadata: JsonObject | undefined, opts: IdentityOptions): string | undefined {
  const ns = filterMetadata?.[opts.jwtMetadataNamespace];
  if (!ns || typeof ns !== 'object') return undefined;
  const failure = (ns as JsonObject)[JWT_FAILURE_METADATA_KEY];
  if (!failure || typeof failure !== 'object') return undefined;
  const message = (failure as JsonObject).message;
  return typeof message === 'string' && message !== '' ? message : 'the token did not verify';
}
