import type { CheckResponse, HeaderValueOption } from '../grpc/check-types.js';
import { RpcCode } from '../grpc/check-types.js';
import { jsonToStruct } from '../grpc/struct.js';
import type { JsonObject } from '../input/envoy-input.js';
import type { PolicyDecision } from '../policy/decision.js';

/** What the agent reads in the body of any refusal: stable code, human message, reasons, decision id. */
export interface DenyBody {
  error: {
    code: string;
    message: string;
    reasons: string[];
    decision_id: string;
    policy_revision?: string;
    tool?: string;
    details?: unknown;
  };
}

const OVERWRITE_OR_ADD = 2;

function header(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append_action: OVERWRITE_OR_ADD };
}

function headerList(map: Record<string, string[]>): HeaderValueOption[] {
  const out: HeaderValueOption[] = [];
  for (const [key, values] of Object.entries(map)) {
    values.forEach((value, i) => out.push({ header: { key, value }, append_action: i === 0 ? OVERWRITE_OR_ADD : 0 }));
  }
  return out;
}

export function allowResponse(opts: {
  decision: PolicyDecision;
  trustedHeaders: Record<string, string>;
  decisionId: string;
  dynamicMetadata: JsonObject;
}): CheckResponse {
  const { decision } = opts;
  const headers = [
    ...headerList(decision.headers),
    ...Object.entries(opts.trustedHeaders).map(([k, v]) => header(k, v)),
  ];
  return {
    status: { code: RpcCode.OK },
    ok_response: {
      headers,
      headers_to_remove: decision.requestHeadersToRemove,
      response_headers_to_add: [
        ...headerList(decision.responseHeadersToAdd),
        header('x-toolgate-decision-id', opts.decisionId),
      ],
      query_parameters_to_set: Object.entries(decision.queryParametersToSet).map(([key, value]) => ({ key, value })),
      query_parameters_to_remove: decision.queryParametersToRemove,
    },
    dynamic_metadata: jsonToStruct(opts.dynamicMetadata),
  };
}

export function denyResponse(opts: {
  httpStatus: number;
  body: DenyBody | string;
  headers?: Record<string, string[]>;
  decisionId: string;
  dynamicMetadata: JsonObject;
}): CheckResponse {
  const isJson = typeof opts.body !== 'string';
  const headers = [...headerList(opts.headers ?? {}), header('x-toolgate-decision-id', opts.decisionId)];
  if (isJson) headers.push(header('content-type', 'application/json'));
  return {
    status: { code: RpcCode.PERMISSION_DENIED, message: isJson ? (opts.body as DenyBody).error.message : 'denied by policy' },
    denied_response: {
      status: { code: opts.httpStatus },
      headers,
      body: isJson ? JSON.stringify(opts.body) : (opts.body as string),
    },
    dynamic_metadata: jsonToStruct(opts.dynamicMetadata),
  };
}
