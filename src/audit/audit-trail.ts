import { createHmac } from 'node:crypto';
import { appendFile, open, readFile, writeFile } from 'node:fs/promises';
import { canonicalJson, sha256Hex } from '../shared/digest.js';

/**
 * An append-only audit trail: one JSON line per call, each carrying the hash of the previous one, so that
 * an edited, removed or reordered record breaks the chain at a place `verifyAuditTrail` names.
 *
 * Keyed (production): each record's `hash` is an HMAC-SHA256 under a key only the writing service holds
 * (`alg: "hmac-sha256"`), so whoever can write the file still cannot forge a record or recompute the chain
 * after an edit; the verifier needs the key. Unkeyed trails (`alg` absent: SHA-256) detect accidents only.
 * (A trail cut short at the end is only detectable against a copy kept elsewhere: ship it off the host.)
 *
 * A crash in the middle of a write leaves a torn last line. Opening such a trail cuts the torn bytes off
 * (kept next to the trail as `<path>.torn-<time>`), reports it through `onRecovered`, and appends a
 * `torn_line_recovered` record to the chain, so the cut is on the record and the trail verifies again.
 */
export type AuditFields = Record<string, unknown>;

export interface AuditRecord extends AuditFields {
  seq: number;
  time: string;
  prev_hash: string;
  hash: string;
  alg?: 'hmac-sha256';
}

const GENESIS = '0'.repeat(64);

/** The record's hash: SHA-256 of its canonical JSON, or HMAC-SHA256 under the trail's key. */
export function recordHash(body: AuditFields, key?: Buffer): string {
  const canonical = canonicalJson(body);
  return key ? createHmac('sha256', key).update(canonical).digest('hex') : sha256Hex(canonical);
}

export interface TornLine {
  /** Bytes cut off the end of the trail (the part of a line that was being written). */
  bytes: number;
  sha256: string;
  /** Where the cut bytes were kept. */
  savedTo: string;
}

export interface OpenOptions {
  /** HMAC key: every record this trail writes is keyed (see above). */
  key?: Buffer;
  /** Told when a torn last line was cut off at open. */
  onRecovered?: (torn: TornLine) => void;
}

export class AuditTrail {
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private seq: number,
    private lastHash: string,
    private readonly key: Buffer | undefined,
  ) {}

  /** Opens (or starts) a trail, continuing the chain from its last whole record. */
  static async open(path: string, opts: OpenOptions = {}): Promise<AuditTrail> {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const { whole, torn } = splitTornTail(text);
    const lines = whole.split('\n').filter((l) => l.trim() !== '');
    const last = lines.length > 0 ? (JSON.parse(lines[lines.length - 1] as string) as AuditRecord) : undefined;
    const trail = new AuditTrail(path, last?.seq ?? 0, last?.hash ?? GENESIS, opts.key);
    if (torn) {
      const savedTo = `${path}.torn-${new Date().toISOString().replace(/[:.]/gu, '-')}`;
      await writeFile(savedTo, torn, { mode: 0o600 });
      const handle = await open(path, 'r+');
      try {
        await handle.truncate(Buffer.byteLength(whole));
      } finally {
        await handle.close();
      }
      const report: TornLine = { bytes: Buffer.byteLength(torn), sha256: sha256Hex(torn), savedTo };
      await trail.append({ kind: 'torn_line_recovered', torn_bytes: report.bytes, torn_sha256: report.sha256, saved_to: savedTo });
      opts.onRecovered?.(report);
    }
    return trail;
  }

  /** Appends one record; records are written in call order, one write per line (O_APPEND). */
  append(fields: AuditFields): Promise<void> {
    const write = this.queue.then(async () => {
      const body: AuditFields = { ...fields, seq: this.seq + 1, time: new Date().toISOString(), prev_hash: this.lastHash };
      if (this.key) body.alg = 'hmac-sha256';
      const hash = recordHash(body, this.key);
      await appendFile(this.path, `${JSON.stringify({ ...body, hash })}\n`, { mode: 0o600 });
      this.seq = body.seq as number;
      this.lastHash = hash;
    });
    this.queue = write.catch(() => undefined);
    return write;
  }
}

/**
 * The trail up to its last whole record, and what follows it when that is not one: a last line without
 * its newline, or that is not JSON. Only the end can be torn; damage before it is the verifier's to name.
 */
function splitTornTail(text: string): { whole: string; torn: string | undefined } {
  if (text === '') return { whole: '', torn: undefined };
  const cut = text.endsWith('\n') ? text.lastIndexOf('\n', text.length - 2) + 1 : text.lastIndexOf('\n') + 1;
  const lastLine = text.slice(cut);
  if (text.endsWith('\n') && parsesAsRecord(lastLine)) return { whole: text, torn: undefined };
  return { whole: text.slice(0, cut), torn: lastLine };
}

function parsesAsRecord(line: string): boolean {
  try {
    const rec = JSON.parse(line) as unknown;
    return typeof rec === 'object' && rec !== null && typeof (rec as AuditRecord).seq === 'number';
  } catch {
    return false;
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** True when records were keyed (and checked with the key). */
  keyed: boolean;
  problems: { line: number; seq: number | undefined; problem: string }[];
}

/** Checks the chain; a keyed trail needs its key (without it, its records cannot be told from forgeries). */
export async function verifyAuditTrail(path: string, key?: Buffer): Promise<VerifyResult> {
  const text = await readFile(path, 'utf8');
  const lines = text.split('\n');
  const tornTail = lines[lines.length - 1] !== '';
  if (!tornTail) lines.pop();
  const problems: VerifyResult['problems'] = [];
  let prevHash = GENESIS;
  let expectedSeq = 1;
  let keyed = false;
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    let rec: AuditRecord;
    try {
      rec = JSON.parse(line) as AuditRecord;
    } catch {
      const last = i === lines.length - 1;
      problems.push({ line: lineNo, seq: undefined, problem: last && tornTail ? 'torn last line (a write cut short); the service cuts it off and records that when it next opens the trail' : 'not a JSON record' });
      return;
    }
    const { hash, ...body } = rec;
    if (rec.alg === 'hmac-sha256') {
      keyed = true;
      if (!key) {
        problems.push({ line: lineNo, seq: rec.seq, problem: 'keyed record (hmac-sha256): give the trail\'s key (--key) to verify it' });
        prevHash = hash;
        expectedSeq = (typeof rec.seq === 'number' ? rec.seq : expectedSeq) + 1;
        return;
      }
    } else if (key) {
      problems.push({ line: lineNo, seq: rec.seq, problem: 'not keyed, in a trail verified with a key: a record written without the key (forged or inserted)' });
    }
    if (rec.seq !== expectedSeq) {
      problems.push({ line: lineNo, seq: rec.seq, problem: `expected record ${expectedSeq} here: ${rec.seq > expectedSeq ? `records ${expectedSeq}..${rec.seq - 1} were removed` : 'records were reordered or duplicated'}` });
    } else if (rec.prev_hash !== prevHash) {
      problems.push({ line: lineNo, seq: rec.seq, problem: 'does not chain to the record before it (a record before it was changed or removed)' });
    }
    if (recordHash(body, rec.alg === 'hmac-sha256' ? key : undefined) !== hash) problems.push({ line: lineNo, seq: rec.seq, problem: 'its content does not match its hash: the record was edited' });
    prevHash = hash;
    expectedSeq = (typeof rec.seq === 'number' ? rec.seq : expectedSeq) + 1;
  });
  return { ok: problems.length === 0, records: lines.length, keyed, problems };
}
