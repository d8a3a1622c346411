import { BodyError } from '../../shared/body/body-error.js';
import { decodeUtf8Strict, parseStrictJson } from '../../shared/body/strict-json.js';

/**
 * An upstream's answer to `tools/list`, as Streamable HTTP carries it: one JSON-RPC response
 * (application/json) or an event stream whose `message` events carry JSON-RPC messages (text/event-stream;
 * notifications may come before the response). The tools are kept or dropped by name, the one identity a
 * `tools/call` names too; everything else is written back as it came. Anything that is not a JSON-RPC
 * response with `result.tools` (or an `error`) is garbage, and the caller refuses it: an agent never sees a
 * list that was not filtered.
 */
export type ToolsListOutcome =
  | { kind: 'filtered'; body: Buffer; listed: number; kept: number }
  | { kind: 'error_response' }
  | { kind: 'garbage'; reason: string };

export type KeepTools = (names: string[]) => Promise<Set<string>>;

export async function filterToolsListBody(bytes: Uint8Array, keep: KeepTools): Promise<ToolsListOutcome> {
  let text: string;
  try {
    text = decodeUtf8Strict(bytes);
  } catch (err) {
    if (err instanceof BodyError) return { kind: 'garbage', reason: err.message };
    throw err;
  }
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    const parsed = readResponse(trimmed);
    if (parsed === 'error') return { kind: 'error_response' };
    if (typeof parsed === 'string') return { kind: 'garbage', reason: parsed };
    const { json, listed, kept } = await filtered(parsed, keep);
    return { kind: 'filtered', body: Buffer.from(json), listed, kept };
  }
  // Not a JSON object, and no line of an event stream either (an HTML error page, a 421 "Invalid Host header"):
  // say what came, so the operator sees the upstream's own words.
  if (!/^(data|event|id|retry)?:/m.test(text)) return { kind: 'garbage', reason: `neither JSON nor an event stream: ${JSON.stringify(text.slice(0, 80))}` };
  return filterEventStream(text, keep);
}

type ListResponse = { doc: Record<string, unknown>; tools: unknown[] };

/** A JSON-RPC response with result.tools, 'error' for an error response, or why it is neither. */
function readResponse(json: string): ListResponse | 'error' | string {
  let doc: unknown;
  try {
    doc = parseStrictJson(json);
  } catch (err) {
    return err instanceof BodyError ? `not JSON-RPC (${err.message})` : 'not JSON-RPC';
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'not a JSON-RPC message';
  const msg = doc as Record<string, unknown>;
  if (msg.jsonrpc !== '2.0') return 'not a JSON-RPC 2.0 message';
  if ('error' in msg && !('result' in msg)) return 'error';
  const result = msg.result as Record<string, unknown> | undefined;
  if (!result || typeof result !== 'object' || !Array.isArray(result.tools)) return 'a response without result.tools';
  return { doc: msg, tools: result.tools };
}

async function filtered(r: ListResponse, keep: KeepTools): Promise<{ json: string; listed: number; kept: number }> {
  const names = r.tools.map((t) => (t && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' ? (t as { name: string }).name : undefined));
  const allowed = await keep(names.filter((n): n is string => n !== undefined));
  // A tool without a string name cannot be called by name, so it cannot be allowed: dropped.
  const tools = r.tools.filter((_, i) => names[i] !== undefined && allowed.has(names[i] as string));
  const result = { ...(r.doc.result as Record<string, unknown>), tools };
  return { json: JSON.stringify({ ...r.doc, result }), listed: r.tools.length, kept: tools.length };
}

async function filterEventStream(text: string, keep: KeepTools): Promise<ToolsListOutcome> {
  const events = text.split(/\r?\n\r?\n/);
  let sawResponse = false;
  let listed = 0;
  let kept = 0;
  const out: string[] = [];
  for (const event of events) {
    if (event.trim() === '') {
      out.push(event);
      continue;
    }
    const lines = event.split(/\r?\n/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    const type = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message';
    // A priming event (an id and empty data, for resumption) or another event type: not a message.
    if (data.join('') === '' || type !== 'message') {
      out.push(event);
      continue;
    }
    const parsed = readResponse(data.join('\n'));
    if (parsed === 'error') {
      sawResponse = true;
      out.push(event);
      continue;
    }
    if (typeof parsed === 'string') {
      // Notifications and requests from the server may share the stream; they are not the answer.
      if (parsed === 'a response without result.tools' && isNotResponse(data.join('\n'))) {
        out.push(event);
        continue;
      }
      return { kind: 'garbage', reason: `an event stream whose message is ${parsed}` };
    }
    sawResponse = true;
    const f = await filtered(parsed, keep);
    listed += f.listed;
    kept += f.kept;
    out.push([...lines.filter((l) => !l.startsWith('data:')), `data: ${f.json}`].join('\n'));
  }
  if (!sawResponse) return { kind: 'garbage', reason: 'an event stream without a JSON-RPC response' };
  return { kind: 'filtered', body: Buffer.from(out.join('\n\n')), listed, kept };
}

function isNotResponse(json: string): boolean {
  try {
    const doc = JSON.parse(json) as Record<string, unknown>;
    return typeof doc.method === 'string';
  } catch {
    return false;
  }
}
