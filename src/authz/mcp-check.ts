import { trace, type Link, type Span } from '@opentelemetry/api';
import type { McpServerRegistry } from '../catalog/mcp-servers.js';
import type { ToolCatalog } from '../catalog/tool-catalog.js';
import { contextFrom } from '../shared/tracing.js';
import { TRUSTED_HEADERS } from '../shared/trusted-headers.js';
import type { CheckResponse } from './grpc/check-types.js';
import type { MappedRequest } from './input/build-input.js';
import type { JsonObject } from './input/envoy-input.js';
import { TOOLGATE_MCP_SERVER } from './input/mcp-adapter.js';
import type { McpMessage } from './input/mcp-message.js';
import { McpInvalidArguments, type McpRejection } from './input/mcp-rejection.js';
import type { DecisionRecord } from './observability/decision-log.js';
import type { PolicyDecision } from './policy/decision.js';
import { ListingGate } from './policy/listing-gate.js';
import type { PolicyEngine } from './policy/policy-engine.js';
import { catalogListedTools, visibleTools } from './policy/visible-tools.js';
import { invalidArgumentsResult } from '../shared/mcp-tool-errors.js';
import { jsonRpcDenyResponse, jsonRpcToolErrorResponse, policyDenyMessage, type JsonRpcErrorData } from './response/jsonrpc-deny.js';
import { mcpTrustedHeaders } from './response/mcp-trusted-headers.js';
import type { UpstreamCredentialValues } from './upstream-credentials.js';

/**
 * The MCP parts of a check (check-service.ts joins them): what an allowed message carries on, how a refused
 * one is answered in JSON-RPC, and what is recorded about it.
 */
export interface McpCheckOptions {
  engine: PolicyEngine;
  catalog: ToolCatalog;
  servers: McpServerRegistry | undefined;
  upstreamCredentials: UpstreamCredentialValues | undefined;
  attestationKey: Buffer | undefined;
}

type Answer = { response: CheckResponse; httpStatus: number };

/** MCP refusals that the client must see at the HTTP level even when the request had an id. */
const HTTP_LEVEL_MCP_REFUSALS = new Set<string>(['unauthenticated', 'header_mismatch', 'body_too_large']);

export class McpCheck {
  private readonly listingGate: ListingGate;

  constructor(private readonly opts: McpCheckOptions) {
    this.listingGate = new ListingGate(opts.engine, opts.catalog, opts.servers);
  }

  /** An allowed tools/call goes on only if the policy would list the tool for this agent (listing-gate.ts). */
  async gateCall(mapped: MappedRequest, decision: PolicyDecision, revision: string): Promise<PolicyDecision> {
    if (!decision.allowed || mapped.mcp?.method !== 'tools/call' || !mapped.toolCall) return decision;
    const tool = mapped.toolCall.tool;
    const agentId = typeof mapped.input.agent_id === 'string' ? mapped.input.agent_id : undefined;
    if (await this.listingGate.listed(() => callListingQuestion(mapped.input), agentId, mapped.mcp.server, tool, revision)) return decision;
    return { ...decision, allowed: false, reasons: [`tool "${tool}" is not in this agent's tools/list (the policy does not list it), so it cannot be called`] };
  }

  /**
   * An allowed MCP message. To toolgate's own server (the executor): the trusted headers and attestation of
   * the MCP contract, with the visible tools for tools/list. To an upstream: only the decision, the method
   * (Envoy routes tools/list answers through the list filter; the route removes it) and the credentials
   * toolgate presents there; the agent's Authorization header is removed either way.
   */
  async allowHeaders(mapped: MappedRequest, decisionId: string, revision: string, requestBody: Uint8Array, obligations?: string): Promise<{ trusted: Record<string, string>; remove: string[]; listing?: JsonObject }> {
    const message = mapped.mcp as McpMessage;
    const agent = mapped.agent as NonNullable<MappedRequest['agent']>;
    const trusted: Record<string, string> = { [TRUSTED_HEADERS.decisionId]: decisionId, [TRUSTED_HEADERS.policyRevision]: revision };
    if (message.server !== TOOLGATE_MCP_SERVER) {
      trusted[TRUSTED_HEADERS.mcpMethod] = message.method;
      const cred = this.opts.upstreamCredentials?.get(message.server);
      if (cred) trusted[cred.header] = cred.value;
      const remove = cred?.header === 'authorization' ? [] : ['authorization'];
      // The listing question travels to the list filter in ext_authz's dynamic metadata.
      return message.method === 'tools/list' ? { trusted, remove, listing: listingQuestion(mapped.input) } : { trusted, remove };
    }
    trusted[TRUSTED_HEADERS.agentId] = agent.id;
    trusted[TRUSTED_HEADERS.agentMethod] = agent.method;
    const listed = message.method === 'tools/list' ? await visibleTools(this.opts.engine, mapped.input, TOOLGATE_MCP_SERVER, catalogListedTools(this.opts.catalog)) : undefined;
    const contract = mcpTrustedHeaders(
      { message, tool: mapped.toolCall?.tool, visibleTools: listed, requestBody, ...(obligations ? { obligations } : {}) },
      { decisionId, agentId: agent.id, agentMethod: agent.method, policyRevision: revision },
      this.opts.attestationKey,
    );
    return { trusted: Object.assign(trusted, contract), remove: ['authorization'] };
  }
}

export function mcpRefusalSubject(mapped: MappedRequest): string {
  const m = mapped.mcp as McpMessage;
  return m.method === 'tools/call' ? `the policy does not allow calling tool "${mapped.toolCall?.tool ?? ''}"` : `the policy does not allow MCP ${m.method}`;
}

/** A policy refusal: a JSON-RPC error for the request's id (HTTP 200), or the status when there is no id. */
export function mcpPolicyDeny(o: { message: McpMessage; what: string; decision: PolicyDecision; httpStatus: number; data: JsonRpcErrorData; decisionId: string; meta: JsonObject }): Answer {
  const id = o.message.kind === 'request' ? o.message.id : undefined;
  return {
    response: jsonRpcDenyResponse({ id, httpStatus: o.httpStatus, rpcCode: -32003, message: policyDenyMessage(o.what, o.decision.reasons), data: o.data, headers: o.decision.headers, decisionId: o.decisionId, dynamicMetadata: o.meta }),
    httpStatus: id !== undefined ? 200 : o.httpStatus,
  };
}

/**
 * A refusal of the message itself (unreadable, unauthenticated, unknown tool, ...). Arguments of a tools/call
 * that fail toolgate's catalog schema are the exception MCP makes: a tool execution error for the request's id.
 */
export function mcpRejectionDeny(err: McpRejection, data: JsonRpcErrorData, decisionId: string, meta: JsonObject): Answer {
  if (err instanceof McpInvalidArguments && err.jsonRpcId !== undefined) {
    const call = { decision_id: decisionId, ...(data.policy_revision !== undefined ? { policy_revision: data.policy_revision } : {}) };
    const result = invalidArgumentsResult(err.toolName, err.fields, call);
    return { response: jsonRpcToolErrorResponse({ id: err.jsonRpcId, message: err.message, result, decisionId, dynamicMetadata: meta }), httpStatus: 200 };
  }
  const forceHttpStatus = HTTP_LEVEL_MCP_REFUSALS.has(err.code);
  return {
    response: jsonRpcDenyResponse({ id: err.jsonRpcId, httpStatus: err.httpStatus, forceHttpStatus, rpcCode: err.rpcCode, message: err.message, data, decisionId, dynamicMetadata: meta }),
    httpStatus: err.jsonRpcId !== undefined && !forceHttpStatus ? 200 : err.httpStatus,
  };
}

/** No decision could be made (fail closed): a JSON-RPC internal error. */
export function mcpPolicyError(message: McpMessage, text: string, data: JsonRpcErrorData, decisionId: string, meta: JsonObject): Answer {
  const id = message.kind === 'request' ? message.id : undefined;
  return { response: jsonRpcDenyResponse({ id, httpStatus: 500, rpcCode: -32603, message: text, data, decisionId, dynamicMetadata: meta }), httpStatus: id !== undefined ? 200 : 500 };
}

/** In ext_authz's dynamic metadata: for the access log and for Envoy's JSON-RPC answers to upstream failures. */
export function mcpMetadata(m: McpMessage): JsonObject {
  const meta: JsonObject = { mcp_method: m.method, mcp_server: m.server };
  if (m.kind === 'request' && m.id !== undefined) meta.jsonrpc_id = m.id;
  return meta;
}

/** What the tools/list filter needs to ask the policy per upstream tool (see src/authz/mcp-lists). */
function listingQuestion(input: JsonObject): JsonObject {
  const q: JsonObject = { mcp: input.mcp };
  if (input.agent !== undefined) q.agent = input.agent;
  if (input.agent_id !== undefined) q.agent_id = input.agent_id;
  if (input.source_principal !== undefined) q.source_principal = input.source_principal;
  return q;
}

/** The listing question behind a tools/call: the same agent, as if it had asked tools/list on this server. */
function callListingQuestion(input: JsonObject): JsonObject {
  const { method: _method, id: _id, params: _params, ...session } = input.mcp as JsonObject;
  return listingQuestion({ ...input, mcp: { ...session, method: 'tools/list' } });
}

export function mcpRecord(m: McpMessage): NonNullable<DecisionRecord['mcp']> {
  const out: NonNullable<DecisionRecord['mcp']> = { method: m.method, server: m.server };
  if (m.id !== undefined) out.jsonrpc_id = m.id;
  if (m.sessionId) out.session_id = m.sessionId;
  if (m.protocolVersion) out.protocol_version = m.protocolVersion;
  return out;
}

/** MCP carries trace context in params._meta (the SDKs' convention for `traceparent`). */
export function mcpMetaTraceparent(mapped: MappedRequest | undefined): string | undefined {
  const meta = mapped?.mcp?.params?._meta;
  const tp = meta && typeof meta === 'object' ? (meta as Record<string, unknown>).traceparent : undefined;
  return typeof tp === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(tp) ? tp : undefined;
}

export function linksTo(traceparent: string): Link[] {
  const ctx = trace.getSpanContext(contextFrom(traceparent));
  return ctx ? [{ context: ctx }] : [];
}

/** The OpenTelemetry semantic conventions for MCP, on the check span. */
export function setMcpSpanAttributes(span: Span, m: NonNullable<DecisionRecord['mcp']>): void {
  span.setAttribute('mcp.method.name', m.method);
  span.setAttribute('toolgate.mcp.server', m.server);
  if (m.jsonrpc_id !== undefined) span.setAttribute('jsonrpc.request.id', String(m.jsonrpc_id));
  if (m.session_id) span.setAttribute('mcp.session.id', m.session_id);
  if (m.protocol_version) span.setAttribute('mcp.protocol.version', m.protocol_version);
  if (m.method !== 'tools/call') span.setAttribute('gen_ai.operation.name', m.method);
}
