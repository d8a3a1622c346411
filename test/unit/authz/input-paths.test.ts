import { describe, expect, it } from 'vitest';
import { encodeInputJson } from '../../../src/authz/input/input-json.js';
import { inputPathsOf, readsInputPath, type InputPaths } from '../../../src/authz/policy/input-paths.js';

const rego = (source: string): InputPaths => inputPathsOf([{ path: 'p.rego', source }]);
/** The tree as plain nested objects, for comparison. */
const plain = (p: InputPaths): unknown => (p === 'all' ? 'all' : Object.fromEntries([...p].map(([k, v]) => [k, v === 'whole' ? true : plain(v)])));

describe('inputPathsOf: what a bundle can read of input', () => {
  it('collects static references, dotted and bracketed, each needed whole', () => {
    const p = rego(`package x
import rego.v1
claims := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].jwt_payload
allow if {
  input.attributes.request.http.method == "POST"
  input["parsed_body"].params.name == "echo"
  input.parsed_path == ["mcp"]
}`);
    expect(plain(p)).toEqual({
      attributes: { metadataContext: { filterMetadata: { 'envoy.filters.http.jwt_authn': { jwt_payload: true } } }, request: { http: { method: true } } },
      parsed_body: { params: { name: true } },
      parsed_path: true,
    });
    expect(readsInputPath(p, ['parsed_body', 'params', 'name', 'deeper'])).toBe(true);
    expect(readsInputPath(p, ['tool_call'])).toBe(false);
    expect(readsInputPath(p, ['history'])).toBe(false);
    expect(readsInputPath(p, ['attributes', 'request', 'http', 'body'])).toBe(false);
  });

  it('a dynamic step keeps the prefix whole; a prefix read wins over deeper reads', () => {
    const p = rego(`package x
deny contains msg if { some k; input.tool_call.arguments[k]; msg := k }
deny contains "x" if input.tool_call.arguments.a.b == 1
ok if input.mcp[0]`);
    expect(plain(p)).toEqual({ tool_call: { arguments: true }, mcp: true });
  });

  it('bare input, a template string, an unterminated string or no Rego at all: everything', () => {
    expect(rego('package x\nallow if walk(input, [p, v])')).toBe('all');
    expect(rego('package x\nallow if json.marshal(input) != ""')).toBe('all');
    expect(rego('package x\nimport input\nallow if input.a')).toBe('all');
    expect(rego('package x\nallow if { true } with input as {}')).toBe('all');
    expect(rego('package x\nmsg := $"agent {input.agent_id}"')).toBe('all');
    expect(rego('package x\nmsg := "unterminated')).toBe('all');
    expect(inputPathsOf([])).toBe('all');
    // One dynamic file among several is enough.
    expect(inputPathsOf([{ path: 'a.rego', source: 'package a\nx := input.a' }, { path: 'b.rego', source: 'package b\ny := object.get(input, "b", 1)' }])).toBe('all');
  });

  it('ignores comments, strings and fields that are merely named input', () => {
    const p = rego(`package x
# input.secret is not read
note := "input.also_not"
raw := \`input.nor_this\`
y := data.config.input.z
allow if input.agent_id == "a"`);
    expect(plain(p)).toEqual({ agent_id: true });
  });

  it('escaped keys in brackets are read as Rego reads them', () => {
    expect(plain(rego('package x\na := input["tool\\u005fcall"]["a\\"b"]'))).toEqual({ tool_call: { 'a"b': true } });
  });
});

describe('encodeInputJson with paths', () => {
  const big = 'x'.repeat(70_000);
  const args = { message: big };
  const doc = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: args } };
  const mcp = { method: 'tools/call', server: 'toolgate', id: 1, params: doc.params };
  const toolCall = { protocol: 'mcp', server: 'toolgate', tool: 'echo', arguments: args };
  const input = { attributes: { request: { http: { method: 'POST', body: JSON.stringify(doc), headers: { a: 'b' } } } }, parsed_path: ['mcp'], parsed_body: doc, mcp, tool_call: toolCall, agent_id: 'ops-bot' };
  const splices = { values: new Map<unknown, Buffer>([[args, Buffer.from(JSON.stringify(args))], [doc, Buffer.from(JSON.stringify(doc))]]), containers: new Set<unknown>([mcp, mcp.params, toolCall]) };

  it('leaves out what the bundle cannot read and keeps the rest exactly', () => {
    const paths = rego('package x\nallow if { input.attributes.request.http.method == "POST"; input.parsed_body.params.name == "echo"; is_string(input.parsed_body.params.arguments.message) }');
    const out = encodeInputJson(input as never, splices, paths);
    expect(JSON.parse(out.toString())).toEqual({ attributes: { request: { http: { method: 'POST' } } }, parsed_body: { params: { name: 'echo', arguments: { message: big } } } });
    // One copy of the arguments, not four.
    expect(out.length).toBeLessThan(big.length + 200);
  });

  it('with every path it is the whole input, spliced or not', () => {
    expect(JSON.parse(encodeInputJson(input as never, splices, 'all').toString())).toEqual(JSON.parse(JSON.stringify(input)));
    const p = rego('package x\nallow if { input.tool_call.arguments.message; input.mcp; input.parsed_body }');
    const out = JSON.parse(encodeInputJson(input as never, splices, p).toString()) as Record<string, unknown>;
    expect(out).toEqual({ tool_call: { arguments: args }, mcp: JSON.parse(JSON.stringify(mcp)), parsed_body: doc });
  });
});
