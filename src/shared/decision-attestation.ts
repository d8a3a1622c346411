import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { TRUSTED_HEADERS } from './trusted-headers.js';

/**
 * Proof, from the authz server to the executor, that this exact request was allowed: an HMAC over the
 * decision (id, agent, tool, policy revision, obligations) and the SHA-256 of the body that was evaluated, with a key only
 * those two hold. Envoy strips client copies of the x-toolgate-* headers, but anything else that can reach the
 * executor's port (a tool with network access, another pod) could set them; without the key it cannot make
 * a call run, nor change the arguments of an allowed one. An attestation expires (ATTESTATION_TTL_SECONDS) and
 * the executor accepts each decision once.
 */
export const ATTESTATION_HEADER = TRUSTED_HEADERS.attestation;

/** Long enough for HMAC-SHA256 to be as strong as its output. */
const MIN_KEY_BYTES = 32;
/** v2: `v2.<issued-at>.<expires-at>.<mac>`, times in Unix seconds, both under the MAC (v1 had no expiry). */
const VERSION = 'v2';

/**
 * How long an attestation is good for. Envoy forwards an allowed request as soon as the check answers (the
 * body is already buffered for the check), so seconds are plenty; a short life bounds what a captured
 * attestation is worth, and how long the executor must remember it to accept it once (see
 * executor/call/used-decisions.ts and, across replicas, the Job named after the call).
 */
export const ATTESTATION_TTL_SECONDS = 20;
/** No attestation may claim a longer life than Envoy's route timeout for tool calls (330 s). */
export const MAX_ATTESTATION_LIFETIME_SECONDS = 330;
/** Clocks of the authz and executor hosts may disagree by this much. */
export const ATTESTATION_CLOCK_SKEW_SECONDS = 5;
/** From the earliest to the latest moment an attestation of ATTESTATION_TTL_SECONDS can be accepted. */
export const ATTESTATION_ACCEPT_WINDOW_SECONDS = ATTESTATION_TTL_SECONDS + 2 * ATTESTATION_CLOCK_SKEW_SECONDS;

export interface AttestedDecision {
  decisionId: string;
  agentId: string;
  agentMethod: string;
  tool: string;
  policyRevision: string;
  /**
   * What was decided: `rest` (the default) for `POST /v1/tools/{tool}`, `mcp:<JSON-RPC method>` for an MCP
   * message. Part of the MAC, so an attestation for one kind of message never passes for another.
   */
  scope?: string;
  /**
   * The bytes the decision covers. REST, MCP `tools/call` and any other MCP message but `tools/list`: the
   * request body exactly as Envoy sent it (the executor reads the arguments it runs with from those bytes,
   * with the same strict reader as the authz server). MCP `tools/list`: the visible-tools header value.
   */
  body: Uint8Array;
  /**
   * The obligations header exactly as sent (canonical JSON, see shared/obligations.ts), when the decision
   * carried obligations. Under the MAC, so they can be neither removed, added nor changed on the way; without
   * it the MAC is computed exactly as before obligations existed.
   */
  obligations?: string;
}

export class AttestationKeyError extends Error {}

/** The shared key: a file's bytes, trailing whitespace dropped (so `openssl rand -base64 48 > key` works). */
export async function loadAttestationKey(path: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new AttestationKeyError(`cannot read the decision key ${path}: ${(err as Error).message}`);
  }
  const key = Buffer.from(bytes.toString('latin1').trimEnd(), 'latin1');
  if (key.length < MIN_KEY_BYTES) throw new AttestationKeyError(`the decision key ${path} has ${key.length} bytes; it needs at least ${MIN_KEY_BYTES} (e.g. openssl rand -base64 48)`);
  return key;
}

/** When an attestation was made and how long it lasts (defaults: now, ATTESTATION_TTL_SECONDS). */
export interface AttestationValidity {
  /** Unix time in milliseconds. */
  nowMs?: number;
  ttlSeconds?: number;
}

export function attest(key: Buffer, d: AttestedDecision, validity: AttestationValidity = {}): string {
  const issuedAt = Math.floor((validity.nowMs ?? Date.now()) / 1000);
  const expiresAt = issuedAt + Math.min(validity.ttlSeconds ?? ATTESTATION_TTL_SECONDS, MAX_ATTESTATION_LIFETIME_SECONDS);
  return `${VERSION}.${issuedAt}.${expiresAt}.${mac(key, d, issuedAt, expiresAt).toString('base64url')}`;
}

export type AttestationCheck =
  | { ok: true; issuedAt: number; expiresAt: number }
  /** missing/malformed/mismatch: not made by the key holder for this decision; the others: made, but not valid now. */
  | { ok: false; reason: 'missing' | 'malformed' | 'mismatch' | 'expired' | 'not_yet_valid' | 'too_long' };

const FORMAT = /^v2\.(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/**
 * Checks the MAC first (so a forgery learns nothing about timing rules), then the validity window. A verifier
 * that must remember what it accepted until expiry (to accept it once) bounds the life it accepts.
 */
export function checkAttestation(key: Buffer, d: AttestedDecision, presented: string | undefined, nowMs = Date.now(), maxLifetimeSeconds = MAX_ATTESTATION_LIFETIME_SECONDS): AttestationCheck {
  if (!presented) return { ok: false, reason: 'missing' };
  const m = FORMAT.exec(presented);
  if (!m) return { ok: false, reason: 'malformed' };
  const issuedAt = Number(m[1]);
  const expiresAt = Number(m[2]);
  const got = Buffer.from(m[3] as string, 'base64url');
  const want = mac(key, d, issuedAt, expiresAt);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'mismatch' };
  const now = nowMs / 1000;
  if (expiresAt - issuedAt > Math.min(maxLifetimeSeconds, MAX_ATTESTATION_LIFETIME_SECONDS) || expiresAt < issuedAt) return { ok: false, reason: 'too_long' };
  if (issuedAt > now + ATTESTATION_CLOCK_SKEW_SECONDS) return { ok: false, reason: 'not_yet_valid' };
  if (expiresAt + ATTESTATION_CLOCK_SKEW_SECONDS < now) return { ok: false, reason: 'expired' };
  return { ok: true, issuedAt, expiresAt };
}

export function verifyAttestation(key: Buffer, d: AttestedDecision, presented: string | undefined, nowMs = Date.now()): boolean {
  return checkAttestation(key, d, presented, nowMs).ok;
}

function mac(key: Buffer, d: AttestedDecision, issuedAt: number, expiresAt: number): Buffer {
  const bodySha256 = createHash('sha256').update(d.body).digest('hex');
  // A JSON array: unambiguous whatever characters an agent id or a revision holds.
  const fields: unknown[] = [VERSION, d.decisionId, d.agentId, d.agentMethod, d.tool, d.policyRevision, bodySha256, d.scope ?? 'rest', issuedAt, expiresAt];
  // Appended only when present: an attestation without obligations is the same MAC as before they existed.
  if (d.obligations !== undefined) fields.push('obligations', d.obligations);
  const message = JSON.stringify(fields);
  return createHmac('sha256', key).update(message).digest();
}
