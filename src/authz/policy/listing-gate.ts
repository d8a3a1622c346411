import type { McpServerRegistry } from '../../catalog/mcp-servers.js';
import type { ToolCatalog } from '../../catalog/tool-catalog.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { PolicyEngine } from './policy-engine.js';
import { visibleTools } from './visible-tools.js';

/**
 * "A tool that was not listed cannot be called": before an allowed MCP tools/call goes on, the listing
 * question for that tool (visible-tools.ts) must allow too. Without this, a policy whose listing rule is
 * stricter than its call rules would let an agent call what it was never shown. The answer depends on the
 * agent, the server, the tool and the bundle revision, so it is asked once per combination and remembered
 * (bounded; a new revision asks again).
 */
const MAX_ENTRIES = 10_000;

export class ListingGate {
  private readonly answers = new Map<string, boolean>();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly catalog: ToolCatalog,
    private readonly servers: McpServerRegistry | undefined,
  ) {}

  /**
   * `question`: makes the listing input ({mcp with method tools/list, agent, ...}) without any call's fields,
   * asked only when the answer is not remembered; `agentId` is that input's `agent_id`.
   */
  async listed(question: () => JsonObject, agentId: string | undefined, server: string, tool: string, revision: string): Promise<boolean> {
    const key = answerKey(revision, agentId, server, tool);
    const known = this.answers.get(key);
    if (known !== undefined) return known;
    const def = server === 'toolgate' ? this.catalog.get(tool) : undefined;
    const fields = (def ? this.catalog.deriveFields(def, {}) : (this.servers?.deriveFields(server, tool, {}) ?? {})) as Record<string, unknown>;
    const listed = (await visibleTools(this.engine, question(), server, [{ name: tool, fields }])).length === 1;
    if (this.answers.size >= MAX_ENTRIES) this.answers.clear();
    this.answers.set(key, listed);
    return listed;
  }
}

/** Unambiguous whatever characters the parts hold (each but the last is length-prefixed); cheaper than JSON. */
function answerKey(revision: string, agentId: string | undefined, server: string, tool: string): string {
  const agent = agentId === undefined ? '-' : `${agentId.length}:${agentId}`;
  return `${revision.length}:${revision}${agent}${server.length}:${server}${tool}`;
}
