import { verifyAuditTrail } from './audit-trail.js';

/** `npm run audit:verify -- <trail.jsonl>`: exit 0 when the chain is whole, 1 naming each broken record. */
const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: audit:verify <audit-trail.jsonl>\n');
  process.exit(2);
}
try {
  const result = await verifyAuditTrail(path);
  if (result.ok) {
    process.stdout.write(`ok: ${result.records} records, chain intact\n`);
  } else {
    for (const p of result.problems) process.stdout.write(`record ${p.seq ?? '?'} (line ${p.line}): ${p.problem}\n`);
    process.stdout.write(`BROKEN: ${result.problems.length} problem(s) in ${result.records} records\n`);
    process.exit(1);
  }
} catch (err) {
  process.stderr.write(`cannot verify ${path}: ${(err as Error).message}\n`);
  process.exit(2);
}
