import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Session ids without session state. The executor keeps nothing per session (see docs/agents.md: any replica
 * answers any request), yet an id is worth issuing: it scopes JSON-RPC request ids, which only a session makes
 * unique, so a retried POST (same session and request id) is recognised and runs once. The id is
 * `<random>.<MAC>`: any replica with the key can tell an id it issued, for this agent, from a made-up one
 * (answered 404, as for an unknown session), and one agent cannot present another's.
 */
const VERSION = 's1';
const RANDOM_BYTES = 16;
const MAC_BYTES = 16;

export class McpSessionIds {
  private readonly key: Buffer;

  /** `secret`: the decision key; the session key is derived from it, so no new secret must be deployed. */
  constructor(secret: Buffer) {
    this.key = createHmac('sha256', secret).update('toolgate mcp session id v1').digest();
  }

  issue(agentId: string): string {
    const nonce = randomBytes(RANDOM_BYTES).toString('base64url');
    return `${VERSION}.${nonce}.${this.mac(agentId, nonce).toString('base64url')}`;
  }

  /** True when `id` was issued to this agent by an executor holding the same key. */
  verify(agentId: string, id: string): boolean {
    const parts = id.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION || !parts[1] || !parts[2]) return false;
    const got = Buffer.from(parts[2], 'base64url');
    const want = this.mac(agentId, parts[1]);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private mac(agentId: string, nonce: string): Buffer {
    return createHmac('sha256', this.key).update(JSON.stringify([VERSION, agentId, nonce])).digest().subarray(0, MAC_BYTES);
  }
}
