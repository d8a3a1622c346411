import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNSUPPORTED_REASONS } from '../../src/authz/policy/builtins/index.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { loadFamily, opaCasesDir, type OpaTestCase } from '../support/opa-cases/load-cases.js';
import { meetsExpectation, runEmbedded, runOpa, sameOutcome, type Outcome } from '../support/opa-cases/run-case.js';
import { BUILTIN_FAMILIES, KNOWN_DIFFERENCES } from '../support/opa-cases/known-differences.js';

/**
 * OPA's own YAML test cases for the builtins the embedded engine provides, read from the OPA module in the Go
 * module cache (never copied here), run through the embedded engine (each case compiled with
 * `opa build -t wasm`) and through a real OPA server. Every case where the two disagree must be listed with
 * its reason in known-differences.ts; a listed case that now agrees fails too, so the list stays true.
 */

interface CaseReport {
  family: string;
  note: string;
  embedded: Outcome;
  opa: Outcome;
  embeddedMeets: boolean;
  opaMeets: boolean;
  agree: boolean;
}

describe("OPA's builtin test cases: embedded engine vs real OPA", () => {
  let opa: ManagedProcess;
  let opaUrl: string;
  let opaPath: string;
  let work: string;
  const reports: CaseReport[] = [];

  beforeAll(async () => {
    opaPath = await ensureOpa();
    work = await mkdtemp(join(tmpdir(), 'toolgate-opa-cases-'));
    const port = await freePort();
    opa = startProcess({ name: 'opa-cases', command: opaPath, args: ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error'], logDir: work });
    opaUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(`${opaUrl}/health`, { process: opa, timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await opa?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs every case of the host builtin families through both engines; every disagreement is a listed one', async () => {
    const dir = await opaCasesDir();
    let n = 0;
    for (const [family, dirs] of Object.entries(BUILTIN_FAMILIES)) {
      const cases: OpaTestCase[] = [];
      for (const d of dirs) cases.push(...(await loadFamily(dir, d)));
      for (const c of cases) {
        const caseDir = join(work, `case-${n++}`);
        const embedded = await runEmbedded(c, opaPath, caseDir);
        const real = await runOpa(c, opaUrl);
        await rm(caseDir, { recursive: true, force: true });
        reports.push({
          family,
          note: c.note,
          embedded,
          opa: real,
          embeddedMeets: meetsExpectation(embedded, c),
          opaMeets: meetsExpectation(real, c),
          agree: sameOutcome(embedded, real),
        });
      }
    }

    const table = familyTable(reports);
    const out = join(tmpdir(), 'opa-builtin-conformance.md');
    await writeFile(out, `${table}\n\n${detailList(reports)}\n`);
    process.stdout.write(`${table}\n(details: ${out})\n`);

    // The real OPA passes its own cases (a check on this runner).
    const opaFailures = reports.filter((r) => !r.opaMeets && r.opa.kind !== 'skipped');
    expect(opaFailures.map((r) => `${r.note}: ${show(r.opa)}`)).toEqual([]);

    // A refusal at load is an explained difference when it names the builtin with a stated reason.
    const refusedWithoutReason = reports.filter((r) => r.embedded.kind === 'refused' && !Object.keys(UNSUPPORTED_REASONS).some((b) => r.embedded.kind === 'refused' && r.embedded.message.includes(`${b} (`)));
    expect(refusedWithoutReason.map((r) => r.note)).toEqual([]);
    const unexplained = reports.filter((r) => !r.agree && r.embedded.kind !== 'skipped' && r.embedded.kind !== 'refused' && !(r.note in KNOWN_DIFFERENCES));
    expect(unexplained.map((r) => `${r.note}: embedded ${show(r.embedded)} / OPA ${show(r.opa)}`)).toEqual([]);
    const stale = Object.keys(KNOWN_DIFFERENCES).filter((note) => reports.some((r) => r.note === note && r.agree));
    expect(stale).toEqual([]);
  }, 3_600_000);
});

function show(o: Outcome): string {
  if (o.kind === 'result') return o.rows.length === 0 ? 'undefined' : JSON.stringify(o.rows[0]).slice(0, 300);
  if (o.kind === 'skipped') return `skipped (${o.reason})`;
  return `${o.kind}: ${o.message.slice(0, 300)}`;
}

function familyTable(reports: CaseReport[]): string {
  const rows = [
    '| builtin family | OPA cases | embedded passes | real OPA passes | engines agree | refused at load (unsupported builtin) | embedded passes of the cases it loads |',
    '|---|---|---|---|---|---|---|',
  ];
  const families = [...new Set(reports.map((r) => r.family))];
  for (const f of families) {
    const rs = reports.filter((r) => r.family === f && r.embedded.kind !== 'skipped');
    const pct = (k: number): string => `${k}/${rs.length} (${rs.length ? Math.round((100 * k) / rs.length) : 0}%)`;
    const loaded = rs.filter((r) => r.embedded.kind !== 'refused');
    const loadedPasses = loaded.filter((r) => r.embeddedMeets).length;
    rows.push(
      `| ${f} | ${rs.length} | ${pct(rs.filter((r) => r.embeddedMeets).length)} | ${pct(rs.filter((r) => r.opaMeets).length)} | ${pct(rs.filter((r) => r.agree).length)} | ${rs.length - loaded.length} | ${loaded.length ? `${loadedPasses}/${loaded.length} (${Math.round((100 * loadedPasses) / loaded.length)}%)` : '-'} |`,
    );
  }
  return rows.join('\n');
}

function detailList(reports: CaseReport[]): string {
  return reports
    .filter((r) => !r.agree || !r.embeddedMeets)
    .map((r) => `- ${r.family} / ${r.note}\n  - embedded: ${show(r.embedded)}\n  - OPA: ${show(r.opa)}`)
    .join('\n');
}
