import { describe, expect, it } from 'vitest';
import { encodeInputJson, wholeInputJson } from '../../../src/authz/input/input-json.js';

describe('encodeInputJson', () => {
  it('writes the arguments once, with a hole where each copy stood, and fills them back to the same JSON', () => {
    const raw = `{ "message": "${'hi'.repeat(3000)}",\n "n": [1, 2.50, {"a": null}] }`;
    const args = JSON.parse(raw) as Record<string, unknown>;
    const toolCall = { protocol: 'rest', tool: 'echo', arguments: args };
    const input = { attributes: { request: { http: { body: raw } } }, parsed_body: args, tool_call: toolCall, agent_id: 'a', skipped: undefined };
    const out = encodeInputJson(input as never, { value: args, json: Buffer.from(raw), containers: new Set([toolCall]) });
    expect(out.shared?.holes.map((h) => h.path)).toEqual([['parsed_body'], ['tool_call', 'arguments']]);
    for (const h of out.shared?.holes ?? []) expect(out.skeleton.subarray(h.offset, h.offset + 4).toString()).toBe('null');
    const whole = wholeInputJson(out);
    expect(whole.toString()).toContain(`"parsed_body":${raw}`);
    expect(whole.toString()).toContain(`"arguments":${raw}`);
    expect(whole.length).toBe(out.byteLength);
    expect(JSON.parse(whole.toString())).toEqual(JSON.parse(JSON.stringify(input)));
  });

  it('places by identity, never by content: a field equal to the arguments stays as it is', () => {
    const big = 'x'.repeat(5000);
    const args = { message: big };
    const lookalike = { message: big };
    const out = encodeInputJson({ parsed_body: args, namespace: lookalike as never, note: '"parsed_body"' } as never, { value: args, json: Buffer.from(JSON.stringify(args)), containers: new Set() });
    expect(out.shared?.holes).toHaveLength(1);
    expect(JSON.parse(wholeInputJson(out).toString())).toEqual({ parsed_body: { message: big }, namespace: { message: big }, note: '"parsed_body"' });
  });

  it('is plain JSON.stringify without arguments to share, or when they are small', () => {
    const input = { a: 1, b: ['x', { c: true }] };
    expect(encodeInputJson(input as never, undefined).skeleton.toString()).toBe(JSON.stringify(input));
    const small = { m: 'hi' };
    const e = encodeInputJson({ parsed_body: small } as never, { value: small, json: Buffer.from('{"m":"hi"}'), containers: new Set() });
    expect(e.shared).toBeUndefined();
    expect(e.skeleton.toString()).toBe('{"parsed_body":{"m":"hi"}}');
  });
});
