import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './stack.js';

/**
 * What makes two requests the same call, through Envoy with the local sandbox runner: never a header the
 * client chooses. An agent reusing an x-request-id, or another agent sending the same one, runs a call of
 * its own; an Idempotency-Key belongs to one agent and one tool.
 */
describe('call identity', () => {
  let stack: Stack;
  let jwt: string;
  let cert: { certPath: string; keyPath: string };

  beforeAll(async () => {
    stack = await startStack({ engine: 'embedded', executor: 'local' });
    jwt = await stack.jwtFor('ops-bot');
    cert = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('a client-chosen x-request-id neither replays nor conflicts, within one agent or across agents', async () => {
    const requestId = 'chosen-by-the-client';
    const a = await stack.call('/v1/tools/echo', { message: 'a' }, { jwt, headers: { 'x-request-id': requestId } });
    const b = await stack.call('/v1/tools/echo', { message: 'b' }, { jwt, headers: { 'x-request-id': requestId } });
    const other = await stack.call('/v1/tools/echo', { message: 'a' }, { cert, headers: { 'x-request-id': requestId } });
    expect([a.status, b.status, other.status]).toEqual([200, 200, 200]);
    expect(b.json.result).toEqual({ message: 'b', length: 1 });
    expect(other.headers['idempotent-replayed']).toBeUndefined();
    expect(new Set([a.json.call_id, b.json.call_id, other.json.call_id]).size).toBe(3);
    // Envoy replaced the client's id: no log line carries it.
    await new Promise((r) => setTimeout(r, 1500)); // the access log is flushed every second
    const log = await readFile(stack.accessLogPath, 'utf8');
    expect(log).toContain('/v1/tools/echo');
    expect(log).not.toContain(requestId);
  });

  it('an Idempotency-Key replays only for the same agent and the same tool', async () => {
    const key = `key-${Date.now()}`;
    const first = await stack.call('/v1/tools/echo', { message: 'once' }, { jwt, headers: { 'idempotency-key': key } });
    const again = await stack.call('/v1/tools/echo', { message: 'once' }, { jwt, headers: { 'idempotency-key': key } });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json.call_id).toBe(first.json.call_id);
    // Another agent with the same key, or the same agent on another tool: calls of their own.
    const otherAgent = await stack.call('/v1/tools/echo', { message: 'once' }, { cert, headers: { 'idempotency-key': key } });
    const otherTool = await stack.call('/v1/tools/sleep', { seconds: 0 }, { jwt, headers: { 'idempotency-key': key } });
    expect([otherAgent.status, otherTool.status]).toEqual([200, 200]);
    expect(otherAgent.headers['idempotent-replayed']).toBeUndefined();
    expect(otherTool.json.result).toEqual({ slept: 0 });
  });
});
