/** A tool implementation: arguments already validated against the catalog schema by the executor. */
export interface ToolContext {
  callId: string;
  signal: AbortSignal;
}

export type ToolImplementation = (args: Record<string, unknown>, ctx: ToolContext) => Promise<unknown>;
