/** JSON Schema (draft 2020-12) of the tool catalog file itself, so a broken catalog fails at load, not at call time. */
export const FIELD_SPEC_SCHEMA = {
  oneOf: [
    { type: ['string', 'number', 'boolean'] },
    {
      type: 'object',
      additionalProperties: false,
      required: ['from'],
      properties: { from: { type: 'string', pattern: '^(/([^~/]|~[01])*)*$' }, default: {} },
    },
  ],
};

export const RESERVED_FIELD_NAMES = new Set([
  'attributes',
  'parsed_body',
  'parsed_path',
  'parsed_query',
  'truncated_body',
  'version',
  'source_principal',
  'agent',
  'tool_call',
  'agent_id',
  'action',
  'resource',
  'namespace',
  'policy',
  'mcp',
]);

export const CATALOG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'tools'],
  properties: {
    apiVersion: { const: 'toolgate.dev/v1' },
    kind: { const: 'ToolCatalog' },
    tools: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'description', 'action', 'resource', 'input_schema', 'execution'],
        properties: {
          name: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' },
          description: { type: 'string', minLength: 1 },
          // What MCP clients show and how they treat the tool (MCP ToolAnnotations); hints, never enforcement.
          title: { type: 'string', minLength: 1, maxLength: 200 },
          annotations: {
            type: 'object',
            additionalProperties: false,
            properties: {
              readOnlyHint: { type: 'boolean' },
              destructiveHint: { type: 'boolean' },
              idempotentHint: { type: 'boolean' },
              openWorldHint: { type: 'boolean' },
            },
          },
          // The JSON Schema of the tool's result (an object), when the platform team declares one: MCP's outputSchema.
          output_schema: { type: 'object', required: ['type'], properties: { type: { const: 'object' } } },
          // Budget units one allowed call spends (input.history.agent.budget); a policy's `cost` overrides it.
          cost: { type: 'number', minimum: 0, maximum: 1000000 },
          action: FIELD_SPEC_SCHEMA,
          resource: FIELD_SPEC_SCHEMA,
          namespace: FIELD_SPEC_SCHEMA,
          fields: { type: 'object', additionalProperties: FIELD_SPEC_SCHEMA },
          input_schema: { type: 'object' },
          execution: {
            type: 'object',
            additionalProperties: false,
            required: ['timeout_seconds'],
            properties: {
              // At most 300: Envoy waits 330 s for a call (route timeout and idle timeout), 30 s being the Job's start-up.
              timeout_seconds: { type: 'integer', minimum: 1, maximum: 300 },
              max_output_bytes: { type: 'integer', minimum: 1, maximum: 1048576 },
              network: { enum: ['none', 'cluster', 'any'] },
              service_account: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 253 },
              rbac: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['apiGroups', 'resources', 'verbs'],
                  properties: {
                    apiGroups: { type: 'array', items: { type: 'string' } },
                    resources: { type: 'array', items: { type: 'string' }, minItems: 1 },
                    verbs: { type: 'array', items: { enum: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] }, minItems: 1 },
                    resourceNames: { type: 'array', items: { type: 'string' } },
                  },
                },
              },
              resources: {
                type: 'object',
                additionalProperties: false,
                properties: { cpu: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?m?$' }, memory: { type: 'string', pattern: '^[0-9]+(Ki|Mi|Gi)?$' } },
              },
              // Kubernetes runner: this many pre-started single-use pods wait for this tool's calls (0: off).
              warm_pool: { type: 'object', additionalProperties: false, required: ['size'], properties: { size: { type: 'integer', minimum: 0, maximum: 50 } } },
            },
          },
        },
      },
    },
  },
} as const;
