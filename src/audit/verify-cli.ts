import { readFile } from 'node:fs/promises';
import { verifyAuditTrail } from './audit-trail.js';

/**
 * `npm run audit:verify -- [--key <key-file>] <trail.jsonl>...`: exit 0 when every chain is whole, 1 naming
 * each broken record, 2 when a trail cannot be read. Keyed trails (the Helm chart's) need their key.
 */
const args = process.argv.slice(2);
const k = args.indexOf('--key');
const keyFile = k === -1 ? undefined : args[k + 1];
const paths = args.filter((_, i) => k === -1 || (i !== k && i !== k + 1));
if (paths.length === 0 || (k !== -1 && !keyFile)) {
  process.stderr.write('usage: audit:verify [--key <key-file>] <audit-trail.jsonl>...\n');
  process.exit(2);
}
let exit = 0;
try {
  const key = keyFile ? Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'utf8') : undefined;
  for (const path of paths) {
    const prefix = paths.length > 1 ? `${path}: ` : '';
    const result = await verifyAuditTrail(path, key);
    if (result.ok) {
      process.stdout.write(`${prefix}ok: ${result.records} records, chain intact${result.keyed ? ' (keyed)' : ''}\n`);
    } else {
      for (const p of result.problems) process.stdout.write(`${prefix}record ${p.seq ?? '?'} (line ${p.line}): ${p.problem}\n`);
      process.stdout.write(`${prefix}BROKEN: ${result.problems.length} problem(s) in ${result.records} records\n`);
      exit = 1;
    }
  }
} catch (err) {
  process.stderr.write(`cannot verify: ${(err as Error).message}\n`);
  process.exit(2);
}
process.exit(exit);
