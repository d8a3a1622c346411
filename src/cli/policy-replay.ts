import { replayDecisions, type ReplayReport } from '../authz/replay/replay.js';
import type { Outcome } from '../authz/shadow/divergence.js';

/**
 * `npm run policy:replay -- --bundle candidate.tar.gz --decisions <log files...> [--decision agent/authz]
 * [--examples 3] [--json]`: what a candidate bundle would change, from the decision logs toolgate wrote.
 * Exit status: 0 nothing would change, 1 something would flip (a CI gate), 2 usage or input errors.
 */
const USAGE = 'usage: npm run policy:replay -- --bundle <candidate.tar.gz | dir> --decisions <log file>... [--decision <path>] [--examples <n>] [--json]\n';

function parseArgs(argv: string[]): { bundle: string; decisions: string[]; decision?: string; examples: number; json: boolean } {
  let bundle: string | undefined;
  const decisions: string[] = [];
  let decision: string | undefined;
  let examples = 3;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--bundle') bundle = argv[++i];
    else if (a === '--decision') decision = argv[++i];
    else if (a === '--examples') examples = Number(argv[++i]);
    else if (a === '--json') json = true;
    else if (a === '--decisions') {
      while (i + 1 < argv.length && !(argv[i + 1] as string).startsWith('--')) decisions.push(argv[++i] as string);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!bundle) throw new Error('--bundle is required');
  if (decisions.length === 0) throw new Error('--decisions needs at least one log file');
  if (!Number.isInteger(examples) || examples < 0) throw new Error('--examples takes a whole number');
  return { bundle, decisions, examples, json, ...(decision ? { decision } : {}) };
}

function describe(o: Outcome): string {
  if ('error' in o) return `error (${o.error})`;
  return o.allowed ? 'allowed' : `denied${o.reasons.length ? ` (${o.reasons.join('; ')})` : ''}`;
}

function text(r: ReplayReport): string {
  const lines = [
    `candidate ${r.bundle.path} (revision ${r.bundle.revision || 'none'}), decision ${r.decision}`,
    `read ${r.read.decisions} recorded decisions from ${r.read.lines} lines; replayed ${r.replayed} (${r.read.withoutInput} without input skipped, ${r.read.unreadable} unreadable lines)`,
    `throughput: ${r.decisionsPerSecond} decisions/s (${r.seconds.total} s in all, ${r.seconds.evaluating} s evaluating)`,
  ];
  if (r.replayedMasked > 0) lines.push(`note: ${r.replayedMasked} replayed inputs had fields masked before logging; a policy reading those fields sees them missing`);
  if (r.flips === 0) {
    lines.push('', 'no decision would change');
    return `${lines.join('\n')}\n`;
  }
  lines.push('', `${r.flips} decisions would change: ${Object.entries(r.byDirection).map(([d, n]) => `${d} ${n}`).join(', ')}`, '');
  for (const g of r.groups) {
    lines.push(`  ${g.direction}  tool ${g.tool}  agent ${g.agent}: ${g.count}`);
    for (const e of g.examples) lines.push(`      ${e.decisionId}: recorded ${describe(e.recorded)}${e.recorded.revision ? ` [${e.recorded.revision}]` : ''} -> candidate ${describe(e.candidate)}${e.masked ? ' (input masked)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let report: ReplayReport;
  try {
    report = await replayDecisions({ bundlePath: args.bundle, decisionFiles: args.decisions, examplesPerGroup: args.examples, ...(args.decision ? { decision: args.decision } : {}) });
  } catch (err) {
    process.stderr.write(`policy replay failed: ${(err as Error).message}\n`);
    return 2;
  }
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : text(report));
  if (report.replayed === 0) {
    process.stderr.write('no recorded decision with an input was found: enable decision_logs (console or a service) so decisions keep their input\n');
    return 2;
  }
  return report.flips > 0 ? 1 : 0;
}

process.exitCode = await main();
