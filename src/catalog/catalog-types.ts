/** A policy field taken from the tool call's arguments by JSON pointer, with an optional default. */
export interface FieldSource {
  from: string;
  default?: unknown;
}

/** A constant, or a value taken from the arguments. */
export type FieldSpec = string | number | boolean | FieldSource;

export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** How and where a tool runs; read by the executor and by the Helm chart (service accounts, RBAC). */
export interface ToolExecution {
  timeout_seconds: number;
  max_output_bytes: number;
  /** none: no network at all; cluster: the Kubernetes API (and the collector); any: unrestricted. */
  network: 'none' | 'cluster' | 'any';
  service_account?: string;
  rbac: RbacRule[];
  resources: { cpu: string; memory: string };
  /** Kubernetes runner: pre-started single-use pods for this tool (opt-in; absent or size 0: a Job per call). */
  warm_pool?: { size: number };
}

/** MCP tool annotations a platform team declares in the catalog: hints for clients, not guarantees. */
export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** A human-readable name for clients (MCP `title`). */
  title?: string;
  annotations?: ToolAnnotations;
  /** JSON Schema of the result (root type object), when declared: MCP `outputSchema`. */
  outputSchema?: Record<string, unknown>;
  action: FieldSpec;
  resource: FieldSpec;
  namespace?: FieldSpec;
  fields: Record<string, FieldSpec>;
  inputSchema: Record<string, unknown>;
  execution: ToolExecution;
  /** Budget units an allowed call spends (input.history.agent.budget.spent); 0 when not declared. */
  cost?: number;
}

/** The flat fields policies see: `action`, `resource`, `namespace` and tool-specific ones. */
export type PolicyFields = Record<string, unknown> & { action?: unknown; resource?: unknown; namespace?: unknown };

export interface ArgumentError {
  /** JSON pointer into the arguments, e.g. "/replicas"; "" for the whole object. */
  path: string;
  message: string;
}
