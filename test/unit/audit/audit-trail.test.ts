import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditTrail, resolveAuditConfig } from '../../../src/audit/audit-config.js';
import { AuditTrail, recordHash, verifyAuditTrail, type TornLine } from '../../../src/audit/audit-trail.js';
import { createLogger } from '../../../src/shared/logger.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const run = promisify(execFile);
let dir: string;
const KEY = Buffer.from('k'.repeat(48));
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'toolgate-audit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a torn last line', () => {
  it('is cut off at open, kept aside, reported and recorded in the chain; the trail verifies again', async () => {
    const path = join(dir, 'torn.jsonl');
    const trail = await AuditTrail.open(path);
    await trail.append({ kind: 'call', n: 1 });
    await trail.append({ kind: 'call', n: 2 });
    // A crash in the middle of writing record 3.
    await appendFile(path, '{"kind":"call","n":3,"seq":3,"ti');
    const broken = await verifyAuditTrail(path);
    expect(broken.ok).toBe(false);
    expect(broken.problems[0]?.problem).toMatch(/torn last line/);

    let reported: TornLine | undefined;
    const reopened = await AuditTrail.open(path, { onRecovered: (t) => (reported = t) });
    expect(reported?.bytes).toBe(Buffer.byteLength('{"kind":"call","n":3,"seq":3,"ti'));
    expect(await readFile(reported?.savedTo as string, 'utf8')).toBe('{"kind":"call","n":3,"seq":3,"ti');
    await reopened.append({ kind: 'call', n: 4 });
    const lines = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect(lines[2]).toMatchObject({ kind: 'torn_line_recovered', torn_bytes: reported?.bytes, torn_sha256: reported?.sha256 });
    expect(await verifyAuditTrail(path)).toMatchObject({ ok: true, records: 4 });
  });

  it('the services report it in their log when they open the trail', async () => {
    const path = join(dir, 'torn-logged.jsonl');
    await writeFile(path, 'garbage without a newline');
    const lines: string[] = [];
    await openAuditTrail({ path }, createLogger('test', (l) => lines.push(l)));
    expect(lines.some((l) => l.includes('torn last line') && l.includes('"torn_bytes":25'))).toBe(true);
    expect((await readdir(dir)).some((f) => f.startsWith('torn-logged.jsonl.torn-'))).toBe(true);
  });
});

describe('a keyed trail', () => {
  it('verifies only with its key, and a record recomputed without the key is named', async () => {
    const path = join(dir, 'keyed.jsonl');
    const trail = await AuditTrail.open(path, { key: KEY });
    for (let n = 1; n <= 3; n++) await trail.append({ kind: 'call', n });
    expect(await verifyAuditTrail(path, KEY)).toMatchObject({ ok: true, keyed: true, records: 3 });
    expect((await verifyAuditTrail(path)).ok).toBe(false);
    expect((await verifyAuditTrail(path, Buffer.from('x'.repeat(48)))).ok).toBe(false);

    // Someone who can write the file edits record 2 and recomputes the chain the way an unkeyed trail allows.
    const records = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const edited = { ...records[1], n: 99 } as Record<string, unknown>;
    delete edited.hash;
    delete edited.alg;
    const forged = { ...edited, hash: recordHash(edited) };
    await writeFile(path, [records[0], forged, records[2]].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const result = await verifyAuditTrail(path, KEY);
    expect(result.ok).toBe(false);
    expect(result.problems.some((p) => p.seq === 2 && /written without the key/.test(p.problem))).toBe(true);
  });

  it('npm run audit:verify takes --key and several trails', async () => {
    const keyFile = join(dir, 'audit.key');
    await writeFile(keyFile, `${KEY.toString()}\n`);
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    for (const p of [a, b]) {
      const t = await AuditTrail.open(p, { key: KEY });
      await t.append({ kind: 'call' });
    }
    const cli = join(REPO_ROOT, 'dist', 'src', 'audit', 'verify-cli.js');
    const { stdout } = await run(process.execPath, [cli, '--key', keyFile, a, b]);
    expect(stdout).toBe(`${a}: ok: 1 records, chain intact (keyed)\n${b}: ok: 1 records, chain intact (keyed)\n`);
    await expect(run(process.execPath, [cli, a])).rejects.toMatchObject({ code: 1 });
  });

  it('takes its path per pod, so replicas sharing a volume never share a trail', () => {
    expect(resolveAuditConfig({ path: '/var/log/toolgate/authz-${POD_NAME}.jsonl', key_file: 'k' }, (p) => (p.startsWith('/') ? p : `/etc/${p}`), { POD_NAME: 'authz-7d9-x2' })).toEqual({
      path: '/var/log/toolgate/authz-authz-7d9-x2.jsonl',
      key_file: '/etc/k',
    });
  });
});
