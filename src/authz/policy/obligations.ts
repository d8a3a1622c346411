import type { ToolCatalog, ToolDefinition } from '../../catalog/tool-catalog.js';
import { encodeObligations, ObligationsError, parseObligations, wideningProblems, type Obligations } from '../../shared/obligations.js';
import type { JsonObject } from '../input/envoy-input.js';
import { TOOLGATE_MCP_SERVER } from '../input/mcp-adapter.js';
import { PolicyError } from './policy-engine.js';

/**
 * The `obligations` of a policy's decision (see shared/obligations.ts for what they mean). A policy that
 * returns obligations toolgate cannot apply exactly (an unknown key, a malformed value, a limit wider than the
 * catalog's, a tool no runner of toolgate's runs) gets no allow: the call is refused with the reason, as an
 * error of the policy (code `invalid_obligations`), and the operator log says which revision did it.
 */
export class ObligationPolicyError extends PolicyError {
  readonly code = 'invalid_obligations';
}

/** Reads `obligations` from an allowing decision document; undefined when absent or empty. */
export function obligationsOfDecision(value: unknown, where: string): Obligations | undefined {
  if (value === undefined) return undefined;
  try {
    return parseObligations(value, `${where}.obligations`);
  } catch (err) {
    if (err instanceof ObligationsError) throw new ObligationPolicyError(err.message);
    throw err;
  }
}

/**
 * Obligations may only tighten the tool's catalog entry. `tool` undefined: the call goes to no runner of
 * toolgate's (an upstream MCP server), where nothing could apply them.
 */
export function checkObligationsFor(o: Obligations, tool: ToolDefinition | undefined, toolName: string): void {
  if (!tool) throw new ObligationPolicyError(`obligations cannot be applied to "${toolName}": only tools of toolgate's catalog run where toolgate sets their limits`);
  const problems = wideningProblems(o, tool.execution, tool.name);
  if (problems.length > 0) throw new ObligationPolicyError(`${problems.join('; ')}: obligations may only tighten the catalog`);
}

/**
 * What an allowed message carries to the executor: the obligations header value (canonical JSON), or
 * undefined. A message that runs no tool (MCP tools/list, initialize...) carries none: nothing is executed.
 * `call.server`: the MCP server of a tools/call (absent for REST); only toolgate's own server runs tools here.
 */
export function obligationsToCarry(o: Obligations | undefined, call: { tool: string; server?: string | undefined } | undefined, catalog: ToolCatalog): string | undefined {
  if (!o || !call) return undefined;
  const ours = call.server === undefined || call.server === TOOLGATE_MCP_SERVER;
  checkObligationsFor(o, ours ? catalog.get(call.tool) : undefined, call.tool);
  return encodeObligations(o);
}

/**
 * Before a bundle is activated, on each example, recorded and probe input it allows: the same check as at run
 * time, for the input's tool. Inputs naming no catalog tool of toolgate's (the probe's toolgate_probe) are
 * skipped: at run time such a call is refused before any policy runs.
 */
export function obligationsAtLoad(o: Obligations | undefined, input: JsonObject, catalog: ToolCatalog): void {
  const call = input.tool_call;
  if (!o || call === null || typeof call !== 'object' || Array.isArray(call)) return;
  const { tool, server } = call as JsonObject;
  if (typeof tool !== 'string') return;
  const upstream = typeof server === 'string' && server !== TOOLGATE_MCP_SERVER;
  if (!upstream && !catalog.get(tool)) return;
  obligationsToCarry(o, { tool, server: typeof server === 'string' ? server : undefined }, catalog);
}
