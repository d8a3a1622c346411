import { describe, expect, it } from 'vitest';
import { judgeHeaders, judgeJsonBody } from '../../../src/authz/mcp-lists/upstream-answer.js';
import { isListingAnswer, UpstreamAnswerGuard } from '../../../src/authz/mcp-lists/upstream-answer-guard.js';
import { BODY_BUFFERED, type ProcessingRequest } from '../../../src/authz/mcp-lists/ext-proc-codec.js';
import { jsonToStruct } from '../../../src/authz/grpc/struct.js';
import { createLogger } from '../../../src/shared/logger.js';

const call = { server: 'k8s', id: 5 };
const note = { server: 'k8s', id: undefined };
const bytes = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('judgeHeaders', () => {
  it('passes an event stream untouched and reads a JSON answer', () => {
    expect(judgeHeaders(call, 200, 'text/event-stream')).toEqual({ kind: 'pass' });
    expect(judgeHeaders(call, 200, 'application/json; charset=utf-8')).toEqual({ kind: 'read_body' });
    expect(judgeHeaders(call, 400, 'application/json')).toEqual({ kind: 'read_body' });
  });
  it('refuses what is neither for a request, keeping 404 (session gone)', () => {
    expect(judgeHeaders(call, 200, 'text/html')).toEqual({ kind: 'garbage', reason: 'answered HTTP 200 text/html, not a JSON-RPC response', httpStatus: 200 });
    expect(judgeHeaders(call, 200, undefined)).toMatchObject({ kind: 'garbage', reason: 'answered HTTP 200 without a content type, not a JSON-RPC response' });
    expect(judgeHeaders(call, 500, 'text/event-stream')).toMatchObject({ kind: 'garbage', httpStatus: 200 });
    expect(judgeHeaders(call, 404, 'text/plain')).toMatchObject({ kind: 'garbage', httpStatus: 404 });
    expect(judgeHeaders(call, 202, undefined)).toMatchObject({ kind: 'garbage', reason: 'answered HTTP 202 (accepted, no response) to a request' });
  });
  it('without an id: 2xx and 4xx pass, a server error that is not JSON is a 502', () => {
    expect(judgeHeaders(note, 202, undefined)).toEqual({ kind: 'pass' });
    expect(judgeHeaders(note, 405, 'text/plain')).toEqual({ kind: 'pass' });
    expect(judgeHeaders(note, 503, 'text/html')).toEqual({ kind: 'garbage', reason: 'answered HTTP 503 text/html', httpStatus: 502 });
  });
});

describe('judgeJsonBody', () => {
  it('accepts a result or an error for the id, and an error for id null', () => {
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 5, result: {} }))).toBeUndefined();
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 5, error: { code: -32000, message: 'no' } }))).toBeUndefined();
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }))).toBeUndefined();
    expect(judgeJsonBody({ server: 'k8s', id: 'a' }, bytes({ jsonrpc: '2.0', id: 'a', result: { content: [] } }))).toBeUndefined();
  });
  it('names what is wrong', () => {
    expect(judgeJsonBody(call, bytes(''))).toBe('answered application/json with an empty body');
    expect(judgeJsonBody(call, bytes('{"id": '))).toMatch(/^answered application\/json that is not JSON \(/);
    expect(judgeJsonBody(call, bytes('{"a":1,"a":2}'))).toMatch(/not JSON \(.*duplicate/i);
    expect(judgeJsonBody(call, bytes([{ jsonrpc: '2.0', id: 5, result: {} }]))).toBe('answered a JSON array (a batch), not one JSON-RPC response');
    expect(judgeJsonBody(call, bytes({ status: 'ok' }))).toBe('answered JSON that is not a JSON-RPC 2.0 message');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 6, result: {} }))).toBe('answered the response for id 6, not for id 5');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: '5', result: {} }))).toBe('answered the response for id "5", not for id 5');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 5, result: 'x' }))).toBe('answered a JSON-RPC result that is not an object');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 5, error: { message: 'x' } }))).toBe('answered a JSON-RPC error without an integer code and a message');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', method: 'notifications/progress' }))).toBe('answered a JSON-RPC notification (notifications/progress), not the response');
    expect(judgeJsonBody(call, bytes({ jsonrpc: '2.0', id: 5 }))).toBe('answered a JSON-RPC message with neither a result nor an error');
  });
});

describe('UpstreamAnswerGuard', () => {
  const guard = new UpstreamAnswerGuard(createLogger('test', () => {}));
  const meta = (m: Record<string, unknown>): ProcessingRequest['metadata_context'] =>
    ({ filter_metadata: { 'envoy.filters.http.ext_authz': jsonToStruct(m) } }) as unknown as ProcessingRequest['metadata_context'];
  const headers = (status: number, type: string): ProcessingRequest['response_headers'] => ({
    headers: { headers: [{ key: ':status', raw_value: Buffer.from(String(status)) }, { key: 'content-type', raw_value: Buffer.from(type) }] },
  });
  const decided = meta({ decision_id: 'd-1', allowed: true, mcp_server: 'k8s', mcp_method: 'tools/call', jsonrpc_id: 5 });

  it('asks for a JSON body, passes a stream, answers HTML with a JSON-RPC error for the id', () => {
    expect(guard.process({ response_headers: headers(200, 'application/json'), metadata_context: decided })).toEqual({ response_headers: { response: { status: 0 } }, mode_override: { response_body_mode: BODY_BUFFERED } });
    expect(guard.process({ response_headers: headers(200, 'text/event-stream'), metadata_context: decided })).toEqual({ response_headers: { response: { status: 0 } } });
    const html = guard.process({ response_headers: headers(200, 'text/html'), metadata_context: decided }).immediate_response;
    expect(html?.status.code).toBe(200);
    expect(JSON.parse(String(html?.body))).toEqual({
      jsonrpc: '2.0',
      id: 5,
      error: { code: -32603, message: 'upstream MCP server "k8s" answered HTTP 200 text/html, not a JSON-RPC response', data: { code: 'upstream_bad_answer', reasons: ['upstream MCP server "k8s" answered HTTP 200 text/html, not a JSON-RPC response'], decision_id: 'd-1', details: { server: 'k8s' } } },
    });
  });
  it('checks the body it asked for', () => {
    expect(guard.process({ response_body: { body: bytes({ jsonrpc: '2.0', id: 5, result: {} }), end_of_stream: true }, metadata_context: decided })).toEqual({ response_body: { response: { status: 0 } } });
    const wrong = guard.process({ response_body: { body: bytes({ jsonrpc: '2.0', id: 9, result: {} }), end_of_stream: true }, metadata_context: decided }).immediate_response;
    expect(JSON.parse(String(wrong?.body)).error.message).toBe('upstream MCP server "k8s" answered the response for id 9, not for id 5');
  });
  it("leaves Envoy's and toolgate's own answers (no allow decision: the upstream was never reached) as they are", () => {
    expect(guard.process({ response_headers: headers(401, 'text/plain') })).toEqual({ response_headers: { response: { status: 0 } } });
    const denied = meta({ decision_id: 'd-2', allowed: false, mcp_server: 'k8s', mcp_method: 'tools/call', jsonrpc_id: 5 });
    expect(guard.process({ response_headers: headers(400, 'text/plain'), metadata_context: denied })).toEqual({ response_headers: { response: { status: 0 } } });
  });
  it('a tools/list answer goes to the list filter even without its listing question', () => {
    expect(isListingAnswer({ response_body: {}, metadata_context: meta({ allowed: true, mcp_server: 'k8s', mcp_method: 'tools/list' }) })).toBe(true);
    expect(isListingAnswer({ response_body: {}, metadata_context: decided })).toBe(false);
  });
});
