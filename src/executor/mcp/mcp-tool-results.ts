import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ArgumentError, ToolCatalog, ToolDefinition } from '../../catalog/tool-catalog.js';
import { CALL_META_KEY, invalidArgumentsResult as renderInvalidArguments, toolErrorResult } from '../../shared/mcp-tool-errors.js';
import type { RunEvent, ToolOutcome } from '../runners/runner.js';

/** tools/list: the visible tools, in catalog order, each with the catalog's schema and declared hints. */
export function listedTools(catalog: ToolCatalog, visible: readonly string[]): Tool[] {
  const allowed = new Set(visible);
  return catalog
    .all()
    .filter((t) => allowed.has(t.name))
    .map((t) => ({
      name: t.name,
      ...(t.title ? { title: t.title } : {}),
      description: t.description,
      inputSchema: t.inputSchema as Tool['inputSchema'],
      ...(t.outputSchema ? { outputSchema: t.outputSchema as NonNullable<Tool['outputSchema']> } : {}),
      ...(t.annotations ? { annotations: { ...(t.title ? { title: t.title } : {}), ...t.annotations } } : {}),
    }));
}

/**
 * A tool's result for an MCP client: structuredContent (the result object; a result that is not an object is
 * wrapped as `{result}`) and the same as JSON text for clients that read only content. A tool that failed,
 * timed out or could not run is `isError: true` with its cause as text: the model sees it and can react.
 */
export function callToolResult(tool: ToolDefinition, callId: string, outcome: Exclude<ToolOutcome, { status: 'refused' }>, replayed: boolean): CallToolResult {
  const meta = { [CALL_META_KEY]: { call_id: callId, status: outcome.status, replayed, ...('durationMs' in outcome ? { duration_ms: outcome.durationMs } : {}) } };
  switch (outcome.status) {
    case 'succeeded': {
      const r = outcome.result;
      const structured = typeof r === 'object' && r !== null && !Array.isArray(r) ? (r as Record<string, unknown>) : { result: r };
      return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured, _meta: meta };
    }
    case 'failed':
      return toolError(`tool "${tool.name}" failed${outcome.exitCode !== null ? ` (exit status ${outcome.exitCode})` : ''}: ${outcome.error}`, meta);
    case 'timeout':
      return toolError(`tool "${tool.name}" did not finish within its timeout of ${tool.execution.timeout_seconds} s; it was stopped`, meta);
    case 'cancelled':
      return toolError(`the call to tool "${tool.name}" was cancelled`, meta);
    case 'unavailable':
      return toolError(`tool "${tool.name}" could not be run now (the runner is unavailable: ${outcome.error}); retrying may work`, meta);
  }
}

/** Arguments that fail the tool's schema: a tool execution error naming the fields, so the model can fix them. */
/** The authz server renders the same for schema failures it refuses (src/shared/mcp-tool-errors.ts). */
export function invalidArgumentsResult(tool: ToolDefinition, errors: readonly ArgumentError[]): CallToolResult {
  return renderInvalidArguments(tool.name, errors);
}

function toolError(text: string, meta: Record<string, unknown>): CallToolResult {
  return toolErrorResult(text, meta);
}

/**
 * The progress steps of a call, per runner: notifications/progress carry the step number (increasing) out of
 * this total, and a message. A run may skip a step (a fast Job's pod is never seen running); progress still
 * only increases, and the last step is always "finished".
 */
export function progressTotal(runnerKind: 'local' | 'kubernetes'): number {
  return runnerKind === 'kubernetes' ? 5 : 3;
}

export function progressStep(e: RunEvent): { step: number; message: string } | undefined {
  switch (e.kind) {
    case 'job.created':
      return { step: 2, message: `Job ${e.namespace}/${e.job} created` };
    case 'pod.started':
      return { step: 3, message: `pod of Job ${e.job} started` };
    case 'pod.running':
      return { step: 4, message: `pod of Job ${e.job} running` };
    case 'sandbox.started':
      return { step: 2, message: 'sandbox started' };
    // The end is reported from the outcome (it is known for every runner and every way a call ends).
    case 'job.finished':
    case 'sandbox.exited':
      return undefined;
  }
}
