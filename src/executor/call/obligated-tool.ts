import type { ToolDefinition } from '../../catalog/tool-catalog.js';
import { applyObligations, decodeObligations, ObligationsError, type Obligations } from '../../shared/obligations.js';

/**
 * The tool as this call must run it: its catalog entry with the decision's obligations applied (the tighter
 * of the two for each limit, see shared/obligations.ts). `header` is x-toolgate-obligations, already covered
 * by the verified attestation. `obligations` is set only when they change something, which is how runners
 * holding sandboxes or pods started with the catalog's settings know they cannot serve the call.
 */
export type ObligatedTool = { ok: true; tool: ToolDefinition; obligations: Obligations | undefined } | { ok: false; message: string };

export function obligatedTool(tool: ToolDefinition, header: string | undefined): ObligatedTool {
  if (header === undefined) return { ok: true, tool, obligations: undefined };
  let obligations: Obligations | undefined;
  try {
    obligations = decodeObligations(header);
  } catch (err) {
    if (err instanceof ObligationsError) return { ok: false, message: err.message };
    throw err;
  }
  const execution = applyObligations(tool.execution, obligations);
  if (JSON.stringify(execution) === JSON.stringify(tool.execution)) return { ok: true, tool, obligations: undefined };
  return { ok: true, tool: { ...tool, execution }, obligations };
}
