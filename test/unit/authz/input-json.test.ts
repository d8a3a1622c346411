import { describe, expect, it } from 'vitest';
import { encodeInputJson } from '../../../src/authz/input/input-json.js';

describe('encodeInputJson', () => {
  it('writes the body bytes in place of the arguments it was parsed from, and is the same JSON as stringify', () => {
    const raw = `{ "message": "${'hi'.repeat(3000)}",\n "n": [1, 2.50, {"a": null}] }`;
    const args = JSON.parse(raw) as Record<string, unknown>;
    const input = { attributes: { request: { http: { body: raw } } }, parsed_body: args, tool_call: { protocol: 'rest', tool: 'echo', arguments: args }, agent_id: 'a', skipped: undefined };
    const out = encodeInputJson(input as never, { value: args, json: Buffer.from(raw) });
    expect(out.toString()).toContain(`"parsed_body":${raw}`);
    expect(out.toString()).toContain(`"arguments":${raw}`);
    expect(JSON.parse(out.toString())).toEqual(JSON.parse(JSON.stringify(input)));
  });

  it('substitutes by identity, never by content: a field equal to the arguments stays as it is', () => {
    const big = 'x'.repeat(5000);
    const args = { message: big };
    const lookalike = { message: big };
    const out = encodeInputJson({ parsed_body: args, namespace: lookalike as never, note: '"parsed_body"' } as never, { value: args, json: Buffer.from(JSON.stringify(args)) });
    expect(JSON.parse(out.toString())).toEqual({ parsed_body: { message: big }, namespace: { message: big }, note: '"parsed_body"' });
  });

  it('is plain JSON.stringify without raw arguments', () => {
    const input = { a: 1, b: ['x', { c: true }] };
    expect(encodeInputJson(input as never, undefined).toString()).toBe(JSON.stringify(input));
  });
});
