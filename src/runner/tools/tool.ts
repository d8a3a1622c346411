import type { Attributes } from '@opentelemetry/api';

/** A tool implementation: arguments already validated against the catalog schema by the executor. */
export interface ToolContext {
  callId: string;
  signal: AbortSignal;
  /** Wraps one call to a target API in a CLIENT span (name like `GET apps/v1 deployments/scale`). */
  apiCall<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T>;
}

export type ToolImplementation = (args: Record<string, unknown>, ctx: ToolContext) => Promise<unknown>;
