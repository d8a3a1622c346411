import type { McpServerRegistry } from '../../catalog/mcp-servers.js';
import { errorMessage, type Logger } from '../../shared/logger.js';
import type { JsonObject } from '../input/envoy-input.js';
import { metadataToJson } from '../input/envoy-input.js';
import { visibleTools } from '../policy/visible-tools.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import { jsonRpcErrorBody } from '../response/jsonrpc-deny.js';
import type { ProcessingRequest, ProcessingResponse } from './ext-proc-codec.js';
import { EXT_AUTHZ_METADATA_NAMESPACE, MCP_LISTING_METADATA_KEY } from './listing-metadata.js';
import { filterToolsListBody } from './tools-list-body.js';

/**
 * Envoy's ext_proc for upstream MCP servers' `tools/list` responses (only those: Envoy routes a request there
 * when ext_authz marked it tools/list; see src/gateway/mcp-envoy-config.ts). The buffered response body is
 * filtered to the tools this agent's policy lets it call, asked per tool exactly as for toolgate's own list
 * (src/authz/policy/visible-tools.ts) with the flat fields the registry maps from no arguments. Fails closed:
 * no listing question, an engine error or an answer that is not a tools/list response becomes a JSON-RPC
 * error, never the unfiltered list.
 */
export interface ToolsListFilterOptions {
  engine: PolicyEngine;
  servers: McpServerRegistry;
  log: Logger;
}

const OVERWRITE_OR_ADD = 2;

export class ToolsListFilter {
  constructor(private readonly opts: ToolsListFilterOptions) {}

  async process(req: ProcessingRequest): Promise<ProcessingResponse> {
    if (!req.response_body) return passThrough(req);
    const { listing, decisionId } = listingOf(req);
    const id = listing?.mcp && typeof listing.mcp === 'object' ? (listing.mcp as JsonObject).id : undefined;
    const refuse = (status: number, message: string): ProcessingResponse => refusal(status, id, message, decisionId);
    if (!listing) return refuse(500, 'the tools/list response reached the list filter without a decision (check the Envoy routes)');
    const server = String((listing.mcp as JsonObject).server ?? '');
    try {
      const outcome = await filterToolsListBody(req.response_body.body ?? Buffer.alloc(0), async (names) => {
        const tools = names.map((name) => ({ name, fields: this.opts.servers.deriveFields(server, name, {}) as Record<string, unknown> }));
        return new Set(await visibleTools(this.opts.engine, listing, server, tools));
      });
      if (outcome.kind === 'garbage') {
        this.opts.log.warn('upstream MCP server answered tools/list with garbage', { server, reason: outcome.reason });
        return refuse(502, `MCP server "${server}" answered tools/list with ${outcome.reason}`);
      }
      if (outcome.kind === 'error_response') return { response_body: { response: { status: 0 } } };
      this.opts.log.debug('tools/list filtered', { server, agent_id: listing.agent_id, listed: outcome.listed, kept: outcome.kept });
      return { response_body: { response: { status: 0, header_mutation: { remove_headers: ['content-length'] }, body_mutation: { body: outcome.body } } } };
    } catch (err) {
      this.opts.log.error('tools/list filter failed', { server, cause: errorMessage(err) });
      return refuse(500, `authorization failed while filtering tools/list: ${errorMessage(err)}`);
    }
  }
}

function listingOf(req: ProcessingRequest): { listing: JsonObject | undefined; decisionId: string } {
  const fm = metadataToJson(req.metadata_context)?.filterMetadata as JsonObject | undefined;
  const ns = fm?.[EXT_AUTHZ_METADATA_NAMESPACE] as JsonObject | undefined;
  const listing = ns?.[MCP_LISTING_METADATA_KEY];
  const ok = listing && typeof listing === 'object' && !Array.isArray(listing) && (listing as JsonObject).mcp;
  return { listing: ok ? (listing as JsonObject) : undefined, decisionId: typeof ns?.decision_id === 'string' ? ns.decision_id : '' };
}

function refusal(status: number, id: unknown, message: string, decisionId: string): ProcessingResponse {
  const rpcId = typeof id === 'string' || typeof id === 'number' ? id : undefined;
  const body = jsonRpcErrorBody(rpcId, -32603, message, { code: 'upstream_list_refused', reasons: [message], decision_id: decisionId });
  return {
    immediate_response: {
      // With an id the client gets a JSON-RPC error for its request (HTTP 200 keeps its session).
      status: { code: rpcId !== undefined ? 200 : status },
      headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') }, append_action: OVERWRITE_OR_ADD }] },
      body: Buffer.from(body),
      details: 'toolgate_tools_list_refused',
    },
  };
}

/** Any other message (the filter is configured for response bodies only): continue unchanged. */
function passThrough(req: ProcessingRequest): ProcessingResponse {
  if (req.request_headers) return { request_headers: { response: { status: 0 } } };
  // The body that follows may be replaced: its length is Envoy's to set, not the upstream's.
  if (req.response_headers) return { response_headers: { response: { status: 0, header_mutation: { remove_headers: ['content-length'] } } } };
  if (req.request_body) return { request_body: { response: { status: 0 } } };
  if (req.request_trailers) return { request_trailers: {} };
  return { response_trailers: {} };
}
