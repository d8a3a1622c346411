import type { ToolCatalog } from '../../catalog/tool-catalog.js';
import type { JsonObject } from '../input/envoy-input.js';
import { interpretResult } from './decision.js';
import type { PolicyEngine } from './policy-engine.js';

/**
 * Which tools an agent sees in `tools/list`: the policy is asked once per tool, with the listing's own input
 * (`input.mcp.method == "tools/list"`, the agent, the message) plus what a call of that tool would carry
 * without arguments: `input.tool_call = {protocol: "mcp", server, tool, arguments: {}}` and the flat fields
 * the catalog derives from no arguments (constants and defaults: `action`, `resource`, ...). A tool is listed
 * when that decision allows. The tool's identity is the same name the call is decided on, so listing and
 * calling cannot disagree about which tool is meant. A policy error refuses the whole listing (fail closed).
 */
export interface ListedTool {
  name: string;
  fields: Record<string, unknown>;
}

export async function visibleTools(engine: PolicyEngine, listingInput: JsonObject, server: string, tools: ListedTool[]): Promise<string[]> {
  const visible: string[] = [];
  for (const t of tools) {
    const input: JsonObject = { ...listingInput, ...t.fields, tool_call: { protocol: 'mcp', server, tool: t.name, arguments: {} } };
    const { result } = await engine.evaluate(input);
    if (interpretResult(result, engine.decisionPath).allowed) visible.push(t.name);
  }
  return visible;
}

/** The catalog's tools as the listing question sees them (fields derived from no arguments). */
export function catalogListedTools(catalog: ToolCatalog): ListedTool[] {
  return catalog.all().map((t) => ({ name: t.name, fields: catalog.deriveFields(t, {}) as Record<string, unknown> }));
}
