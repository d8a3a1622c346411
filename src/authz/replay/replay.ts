import { performance } from 'node:perf_hooks';
import { loadBundleFile } from '../bundle/bundle.js';
import { interpretResult } from '../policy/decision.js';
import { WasmPolicyEngine } from '../policy/wasm-engine.js';
import { directionOf, type Direction, type Outcome } from '../shadow/divergence.js';
import { readRecordedDecisions, type ReadStats, type RecordedDecision } from './recorded-decisions.js';

export interface Flip {
  decisionId: string;
  tool: string;
  agent: string;
  direction: Direction;
  recorded: Outcome & { revision?: string };
  candidate: Outcome;
  masked: boolean;
}

export interface ReplayGroup {
  tool: string;
  agent: string;
  direction: Direction;
  count: number;
  examples: Flip[];
}

export interface ReplayReport {
  bundle: { path: string; revision: string };
  decision: string;
  read: ReadStats;
  replayed: number;
  /** Replayed decisions whose input had fields erased or masked before logging. */
  replayedMasked: number;
  flips: number;
  byDirection: Partial<Record<Direction, number>>;
  groups: ReplayGroup[];
  seconds: { total: number; evaluating: number };
  decisionsPerSecond: number;
}

export interface ReplayOptions {
  bundlePath: string;
  decisionFiles: string[];
  /** The decision path; by default the one the recorded events name (else agent/authz). */
  decision?: string;
  examplesPerGroup?: number;
}

/**
 * Re-evaluates recorded inputs against a candidate bundle and reports what would change: each flip grouped
 * by tool, agent and direction, with examples. The candidate runs in the same embedded engine the gateway
 * uses, so a replay is the decision the gateway would make.
 */
export async function replayDecisions(opts: ReplayOptions): Promise<ReplayReport> {
  const started = performance.now();
  const bundle = await loadBundleFile(opts.bundlePath);
  const stats: ReadStats = { lines: 0, decisions: 0, withoutInput: 0, unreadable: 0 };
  const examplesPerGroup = opts.examplesPerGroup ?? 3;
  const engines = new Map<string, WasmPolicyEngine>();
  const engineFor = async (path: string): Promise<WasmPolicyEngine> => {
    let e = engines.get(path);
    if (!e) {
      e = new WasmPolicyEngine(path);
      await e.activate(bundle);
      engines.set(path, e);
    }
    return e;
  };
  const groups = new Map<string, ReplayGroup>();
  const byDirection: Partial<Record<Direction, number>> = {};
  let replayed = 0;
  let replayedMasked = 0;
  let flips = 0;
  let evaluating = 0;
  let decision = opts.decision;
  for await (const d of readRecordedDecisions(opts.decisionFiles, stats, opts.decision)) {
    decision ??= d.path ?? 'agent/authz';
    const path = opts.decision ?? d.path ?? decision;
    const engine = await engineFor(path);
    const t0 = performance.now();
    const candidate = await evaluate(engine, d, path);
    evaluating += performance.now() - t0;
    replayed++;
    if (d.masked) replayedMasked++;
    const direction = directionOf(d.outcome, candidate);
    if (!direction) continue;
    flips++;
    byDirection[direction] = (byDirection[direction] ?? 0) + 1;
    const key = `${d.tool}\u0000${d.agent}\u0000${direction}`;
    let g = groups.get(key);
    if (!g) {
      g = { tool: d.tool, agent: d.agent, direction, count: 0, examples: [] };
      groups.set(key, g);
    }
    g.count++;
    if (g.examples.length < examplesPerGroup) {
      g.examples.push({ decisionId: d.decisionId, tool: d.tool, agent: d.agent, direction, recorded: { ...d.outcome, ...(d.revision ? { revision: d.revision } : {}) }, candidate, masked: d.masked });
    }
  }
  for (const e of engines.values()) await e.close();
  const total = (performance.now() - started) / 1000;
  return {
    bundle: { path: opts.bundlePath, revision: bundle.revision },
    decision: decision ?? opts.decision ?? 'agent/authz',
    read: stats,
    replayed,
    replayedMasked,
    flips,
    byDirection,
    groups: [...groups.values()].sort((a, b) => b.count - a.count || a.tool.localeCompare(b.tool) || a.agent.localeCompare(b.agent)),
    seconds: { total: round(total), evaluating: round(evaluating / 1000) },
    decisionsPerSecond: total > 0 ? Math.round(replayed / total) : replayed,
  };
}

async function evaluate(engine: WasmPolicyEngine, d: RecordedDecision, path: string): Promise<Outcome> {
  try {
    const e = await engine.evaluate(d.input);
    const decision = interpretResult(e.result, path);
    return { allowed: decision.allowed, reasons: decision.reasons };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
