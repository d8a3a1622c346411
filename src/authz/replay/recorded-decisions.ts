import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';
import type { JsonObject } from '../input/envoy-input.js';
import { interpretResult } from '../policy/decision.js';
import type { Outcome } from '../shadow/divergence.js';

/** One decision as recorded in a decision log, with the input it was made on. */
export interface RecordedDecision {
  decisionId: string;
  path: string | undefined;
  input: JsonObject;
  outcome: Outcome;
  tool: string;
  agent: string;
  revision: string | undefined;
  /** Fields were erased or masked before logging: the candidate sees less than the active policy did. */
  masked: boolean;
}

export interface ReadStats {
  lines: number;
  decisions: number;
  /** Decision entries without an input (toolgate's own decision line, refusals before evaluation). */
  withoutInput: number;
  unreadable: number;
}

/**
 * Reads decision logs as toolgate writes them: OPA-format events ("Decision Log" console lines, or a decision
 * log service's batches: one JSON array per line, or a gzip file of them), and toolgate decision lines that
 * carry an `input`. Everything else in a log file (other messages) is skipped.
 */
export async function* readRecordedDecisions(files: string[], stats: ReadStats, defaultPath?: string): AsyncGenerator<RecordedDecision> {
  for (const file of files) {
    for await (const line of linesOf(file)) {
      stats.lines++;
      const text = line.trim();
      if (text === '' || (text[0] !== '{' && text[0] !== '[')) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        stats.unreadable++;
        continue;
      }
      for (const entry of Array.isArray(value) ? value : [value]) {
        const d = decisionOf(entry, stats, defaultPath);
        if (d) yield d;
      }
    }
  }
}

async function* linesOf(file: string): AsyncGenerator<string> {
  if (file.endsWith('.gz')) {
    yield* gunzipSync(await readFile(file)).toString('utf8').split('\n');
    return;
  }
  const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) yield line;
}

function decisionOf(entry: unknown, stats: ReadStats, defaultPath: string | undefined): RecordedDecision | undefined {
  if (entry === null || typeof entry !== 'object') return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e.decision_id !== 'string') return undefined;
  const isOpaEvent = 'bundles' in e && 'path' in e;
  const isToolgateLine = e.msg === 'decision' && typeof e.allowed === 'boolean';
  if (!isOpaEvent && !isToolgateLine) return undefined;
  stats.decisions++;
  if (e.input === null || typeof e.input !== 'object' || Array.isArray(e.input)) {
    stats.withoutInput++;
    return undefined;
  }
  const input = e.input as JsonObject;
  const path = typeof e.path === 'string' ? e.path : defaultPath;
  let outcome: Outcome;
  if (isOpaEvent) {
    if (e.error) outcome = { error: typeof (e.error as { message?: unknown }).message === 'string' ? ((e.error as { message: string }).message) : 'error' };
    else {
      try {
        const d = interpretResult(e.result, path ?? 'agent/authz');
        outcome = { allowed: d.allowed, reasons: d.reasons };
      } catch (err) {
        outcome = { error: (err as Error).message };
      }
    }
  } else {
    outcome = e.result === 'error' ? { error: String(e.cause ?? 'error') } : { allowed: e.allowed as boolean, reasons: Array.isArray(e.reasons) ? (e.reasons as string[]) : [] };
  }
  const toolCall = input.tool_call as { tool?: unknown } | undefined;
  const bundles = e.bundles as Record<string, { revision?: string }> | undefined;
  return {
    decisionId: e.decision_id,
    path,
    input,
    outcome,
    tool: typeof toolCall?.tool === 'string' ? toolCall.tool : typeof e.tool === 'string' ? e.tool : '(none)',
    agent: typeof input.agent_id === 'string' ? input.agent_id : typeof e.agent_id === 'string' ? e.agent_id : '(none)',
    revision: bundles ? Object.values(bundles)[0]?.revision : typeof e.policy_revision === 'string' ? e.policy_revision : undefined,
    masked: (Array.isArray(e.erased) && e.erased.length > 0) || (Array.isArray(e.masked) && e.masked.length > 0),
  };
}
