import { randomUUID } from 'node:crypto';
import { attest } from '../../src/shared/decision-attestation.js';

/**
 * Test double for Envoy + the authz server in front of the executor's /mcp, for unit tests that talk to the
 * executor directly: a `fetch` for the MCP SDK client that adds the trusted headers and the attestation the
 * authz server would add for an allowed request (per docs/architecture.md and the MCP contract), with the
 * shared decision key. `tamper` lets a test break one thing at a time.
 */
export interface AttestingFetchOptions {
  key: Buffer;
  agentId?: string;
  /** x-toolgate-visible-tools for tools/list. */
  visibleTools?: string[];
  /** tools/call: the obligations header value (canonical JSON) the decision carries, attested. */
  obligations?: string;
  /** Change the headers after attesting (a test of what the executor refuses). */
  tamper?: (headers: Record<string, string>, message: Record<string, unknown> | undefined) => void;
  /** Every decision made, in order. */
  decisions?: { method: string; decisionId: string }[];
}

export function attestingFetch(opts: AttestingFetchOptions): typeof fetch {
  return async (input, init) => {
    const method = (init?.method ?? 'GET').toUpperCase();
    const bodyText = typeof init?.body === 'string' ? init.body : '';
    const message = bodyText ? (JSON.parse(bodyText) as Record<string, unknown>) : undefined;
    const decided = method !== 'POST' ? method : typeof message?.method === 'string' ? message.method : 'response';
    const params = (message?.params ?? {}) as Record<string, unknown>;
    const agentId = opts.agentId ?? 'ops-bot';
    const decisionId = `test-decision-${randomUUID()}`;
    const tool = decided === 'tools/call' ? String(params.name) : '';
    const visible = (opts.visibleTools ?? []).join(',');
    const obligations = decided === 'tools/call' ? opts.obligations : undefined;
    const body = decided === 'tools/list' ? Buffer.from(visible) : Buffer.from(bodyText);
    const headers: Record<string, string> = {
      'x-toolgate-decision-id': decisionId,
      'x-toolgate-agent-id': agentId,
      'x-toolgate-agent-auth': 'jwt',
      'x-toolgate-policy-revision': 'test-rev',
      'x-toolgate-mcp-method': decided,
      ...(tool ? { 'x-toolgate-tool': tool } : {}),
      ...(decided === 'tools/list' ? { 'x-toolgate-visible-tools': visible } : {}),
      ...(obligations ? { 'x-toolgate-obligations': obligations } : {}),
      'x-toolgate-attestation': attest(opts.key, { decisionId, agentId, agentMethod: 'jwt', tool, policyRevision: 'test-rev', scope: `mcp:${decided}`, body, ...(obligations ? { obligations } : {}) }),
    };
    opts.tamper?.(headers, message);
    opts.decisions?.push({ method: decided, decisionId });
    const merged = new Headers(init?.headers);
    for (const [k, v] of Object.entries(headers)) merged.set(k, v);
    return fetch(input, { ...init, headers: merged });
  };
}
