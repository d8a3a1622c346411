import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { loadBundleFile } from '../../src/authz/bundle/bundle.js';
import { encodeInputJson, wholeInputJson, type EncodedInput } from '../../src/authz/input/input-json.js';
import { WasmPolicyEngine } from '../../src/authz/policy/wasm-engine.js';
import { ensureOpa } from '../../src/toolchain/install.js';

/**
 * The tool arguments are parsed into wasm memory once and placed at each of their places in the input
 * (input-json.ts, WasmHost.evaluateShared). A policy must not be able to tell: compiled with the real
 * `opa build -t wasm`, a policy that returns the whole input, walks it, marshals it, and compares the copies
 * gives the same answer as with the whole input parsed, evaluation after evaluation (the heap is reset each time).
 */
describe('embedded engine: shared tool arguments are invisible to the policy', () => {
  let work: string;
  let engine: WasmPolicyEngine;

  const REGO = `package t
import rego.v1

result := {
  "input": input,
  "same": input.parsed_body.params.arguments == input.tool_call.arguments,
  "also_mcp": input.mcp.params.arguments == input.tool_call.arguments,
  "keys": object.keys(input.tool_call.arguments),
  "strings": count([v | walk(input, [_, v]); is_string(v)]),
  "marshalled": count(json.marshal(input)),
  "first_item": input.tool_call.arguments.items[0],
}
`;

  const args = { message: 'x'.repeat(9000), items: [{ n: 1.5 }, null, true], 'é': 'ü' };
  const doc = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: args } };
  const mcp = { method: 'tools/call', server: 'toolgate', id: 7, params: doc.params };
  const toolCall = { protocol: 'mcp', server: 'toolgate', tool: 'echo', arguments: args };
  const input = { attributes: { request: { http: { method: 'POST', body: JSON.stringify(doc) } } }, parsed_body: doc, mcp, tool_call: toolCall, agent_id: 'ops-bot' };
  const shared = { value: args, json: Buffer.from(JSON.stringify(args)), containers: new Set<unknown>([doc, doc.params, mcp, mcp.params, toolCall]) };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-wasm-shared-'));
    await mkdir(join(work, 'src'));
    await writeFile(join(work, 'src', 'policy.rego'), REGO);
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: join(work, 'src'), outFile: join(work, 'b.tar.gz'), revision: 'shared', entrypoints: ['t/result'] });
    engine = new WasmPolicyEngine('t/result');
    await engine.activate(await loadBundleFile(join(work, 'b.tar.gz')));
  }, 120_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('gives the policy the same input as parsing the whole document', async () => {
    const encoded = encodeInputJson(input as never, shared);
    expect(encoded.shared?.holes).toHaveLength(3);
    const whole: EncodedInput = { skeleton: wholeInputJson(encoded), byteLength: encoded.byteLength };
    const viaShared = (await engine.evaluate(input as never, encoded)).result as Record<string, unknown>;
    const viaWhole = (await engine.evaluate(input as never, whole)).result;
    expect(viaShared).toEqual(viaWhole);
    expect(viaShared.input).toEqual(JSON.parse(JSON.stringify(input)));
    expect(viaShared).toMatchObject({ same: true, also_mcp: true, first_item: { n: 1.5 } });
    expect([...(viaShared.keys as string[])].sort()).toEqual(['items', 'message', 'é']);
  });

  it('evaluates again and again without growing memory, alternating with whole inputs', async () => {
    const encoded = encodeInputJson(input as never, shared);
    const other = { ...input, agent_id: 'other-bot' };
    const first = (await engine.evaluate(input as never, encoded)).result;
    for (let i = 0; i < 200; i++) {
      expect((await engine.evaluate(input as never, encoded)).result).toEqual(first);
      if (i % 50 === 0) expect((await engine.evaluate(other as never)).result).toMatchObject({ input: { agent_id: 'other-bot' }, same: true });
    }
    const memory = (engine as unknown as { active: { host: { memory: WebAssembly.Memory } } }).active.host.memory.buffer.byteLength;
    expect(memory).toBeLessThan(16 * 1024 * 1024);
  });
});
