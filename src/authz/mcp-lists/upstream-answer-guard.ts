import type { Logger } from '../../shared/logger.js';
import type { JsonObject } from '../input/envoy-input.js';
import { metadataToJson } from '../input/envoy-input.js';
import { jsonRpcErrorBody } from '../response/jsonrpc-deny.js';
import { BODY_BUFFERED, type ProcessingRequest, type ProcessingResponse } from './ext-proc-codec.js';
import { EXT_AUTHZ_METADATA_NAMESPACE, MCP_LISTING_METADATA_KEY } from './listing-metadata.js';
import { judgeHeaders, judgeJsonBody, type AnsweredRequest } from './upstream-answer.js';

/**
 * Envoy's ext_proc for every other answer of an upstream MCP server (POST and DELETE; the server's event
 * stream on GET is not processed). Envoy sends the response headers only; a JSON answer's body is asked for
 * (mode_override BUFFERED) and checked; an answer that is not a JSON-RPC response for the request becomes a
 * JSON-RPC error for its id naming the server and what was wrong (without an id: 502, id null). Stateless:
 * the request's id and server come from ext_authz's dynamic metadata on each message.
 */
export class UpstreamAnswerGuard {
  constructor(private readonly log: Logger) {}

  process(req: ProcessingRequest): ProcessingResponse {
    const { answered, decisionId } = answeredOf(req);
    if (req.response_headers) {
      // No allow decision: the answer is Envoy's or toolgate's own (no credentials, a refusal), never the
      // upstream's, which only an allowed message reaches (ext_authz always marks an allowed MCP message).
      if (!answered) return { response_headers: { response: { status: 0 } } };
      const headers = headerMap(req);
      const status = Number(headers.get(':status') ?? '0');
      const verdict = judgeHeaders(answered, status, headers.get('content-type'));
      if (verdict.kind === 'pass') return { response_headers: { response: { status: 0 } } };
      // No body to read (a HEAD-like empty answer) is judged as an empty body, at once.
      if (verdict.kind === 'read_body') {
        if (req.response_headers.end_of_stream) return this.checkBody(answered, Buffer.alloc(0), decisionId) ?? { response_headers: { response: { status: 0 } } };
        return { response_headers: { response: { status: 0 } }, mode_override: { response_body_mode: BODY_BUFFERED } };
      }
      return this.garbage(answered, verdict.reason, verdict.httpStatus, decisionId);
    }
    if (req.response_body) {
      if (!answered) return { response_body: { response: { status: 0 } } };
      return this.checkBody(answered, req.response_body.body ?? Buffer.alloc(0), decisionId) ?? { response_body: { response: { status: 0 } } };
    }
    if (req.request_headers) return { request_headers: { response: { status: 0 } } };
    if (req.request_body) return { request_body: { response: { status: 0 } } };
    if (req.request_trailers) return { request_trailers: {} };
    return { response_trailers: {} };
  }

  private checkBody(answered: AnsweredRequest, body: Uint8Array, decisionId: string): ProcessingResponse | undefined {
    const why = judgeJsonBody(answered, body);
    return why === undefined ? undefined : this.garbage(answered, why, answered.id === undefined ? 502 : 200, decisionId);
  }

  private garbage(answered: AnsweredRequest, reason: string, httpStatus: number, decisionId: string): ProcessingResponse {
    this.log.warn('upstream MCP server answered garbage', { server: answered.server, reason, decision_id: decisionId });
    return refusal(answered.id, httpStatus, `upstream MCP server ${JSON.stringify(answered.server)} ${reason}`, decisionId, answered.server);
  }
}

/**
 * True when the message belongs to a tools/list answer (the list filter's, which refuses one without its
 * listing question: never an unfiltered list), false for the answer check's.
 */
export function isListingAnswer(req: ProcessingRequest): boolean {
  const ns = extAuthzNamespace(req);
  return ns?.[MCP_LISTING_METADATA_KEY] !== undefined || ns?.mcp_method === 'tools/list';
}

function extAuthzNamespace(req: ProcessingRequest): JsonObject | undefined {
  const fm = metadataToJson(req.metadata_context)?.filterMetadata as JsonObject | undefined;
  return fm?.[EXT_AUTHZ_METADATA_NAMESPACE] as JsonObject | undefined;
}

function answeredOf(req: ProcessingRequest): { answered: AnsweredRequest | undefined; decisionId: string } {
  const ns = extAuthzNamespace(req);
  const decisionId = typeof ns?.decision_id === 'string' ? ns.decision_id : '';
  if (ns?.allowed !== true || typeof ns.mcp_server !== 'string') return { answered: undefined, decisionId };
  const id = ns.jsonrpc_id;
  return { answered: { server: ns.mcp_server, id: typeof id === 'string' || typeof id === 'number' ? id : undefined }, decisionId };
}

function headerMap(req: ProcessingRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of req.response_headers?.headers?.headers ?? []) {
    if (!h.key) continue;
    const value = h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
    out.set(h.key.toLowerCase(), value);
  }
  return out;
}

const OVERWRITE_OR_ADD = 2;

function refusal(id: AnsweredRequest['id'], httpStatus: number, message: string, decisionId: string, server: string): ProcessingResponse {
  const body = jsonRpcErrorBody(id, -32603, message, { code: 'upstream_bad_answer', reasons: [message], decision_id: decisionId, details: { server } });
  return {
    immediate_response: {
      status: { code: httpStatus },
      headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') }, append_action: OVERWRITE_OR_ADD }] },
      body: Buffer.from(body),
      details: 'toolgate_upstream_bad_answer',
    },
  };
}
