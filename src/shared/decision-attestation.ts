import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { canonicalJson } from './digest.js';
import { TRUSTED_HEADERS } from './trusted-headers.js';

/**
 * Proof, from the authz server to the executor, that this exact request was allowed: an HMAC over the
 * decision (id, agent, tool, policy revision) and the SHA-256 of the body that was evaluated, with a key only
 * those two hold. Envoy strips client copies of the x-toolgate-* headers, but anything else that can reach the
 * executor's port (a tool with network access, another pod) could set them; without the key it cannot make
 * a call run, nor change the arguments of an allowed one.
 */
export const ATTESTATION_HEADER = TRUSTED_HEADERS.attestation;

/** Long enough for HMAC-SHA256 to be as strong as its output. */
const MIN_KEY_BYTES = 32;
const VERSION = 'v1';

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
   * The bytes the decision covers. REST: the request body exactly as Envoy sent it. MCP `tools/call`: the
   * tool's arguments as `mcpArgumentsBytes` renders them (not the JSON-RPC envelope, so the executor checks
   * the arguments it actually runs with). MCP `tools/list`: the visible-tools header value. Any other MCP
   * message: the request body.
   */
  body: Uint8Array;
}

/** The attested bytes of an MCP tool call's arguments: their canonical JSON (keys sorted at every level). */
export function mcpArgumentsBytes(args: unknown): Buffer {
  return Buffer.from(canonicalJson(args ?? {}), 'utf8');
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

export function attest(key: Buffer, d: AttestedDecision): string {
  return `${VERSION}.${mac(key, d).toString('base64url')}`;
}

export function verifyAttestation(key: Buffer, d: AttestedDecision, presented: string | undefined): boolean {
  if (!presented?.startsWith(`${VERSION}.`)) return false;
  const got = Buffer.from(presented.slice(VERSION.length + 1), 'base64url');
  const want = mac(key, d);
  return got.length === want.length && timingSafeEqual(got, want);
}

function mac(key: Buffer, d: AttestedDecision): Buffer {
  const bodySha256 = createHash('sha256').update(d.body).digest('hex');
  // A JSON array: unambiguous whatever characters an agent id or a revision holds.
  const message = JSON.stringify([VERSION, d.decisionId, d.agentId, d.agentMethod, d.tool, d.policyRevision, bodySha256, d.scope ?? 'rest']);
  return createHmac('sha256', key).update(message).digest();
}
