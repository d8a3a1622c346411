import { appendFile, readFile } from 'node:fs/promises';
import { canonicalJson, sha256Hex } from '../shared/digest.js';

/**
 * An append-only audit trail: one JSON line per call, each carrying the hash of the previous one, so that
 * an edited, removed or reordered record breaks the chain at a place `verifyAuditTrail` names.
 * (A trail cut short at the end is only detectable against a copy kept elsewhere: ship it off the host.)
 */
export type AuditFields = Record<string, unknown>;

export interface AuditRecord extends AuditFields {
  seq: number;
  time: string;
  prev_hash: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

export function recordHash(body: AuditFields): string {
  return sha256Hex(canonicalJson(body));
}

export class AuditTrail {
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private seq: number,
    private lastHash: string,
  ) {}

  /** Opens (or starts) a trail, continuing the chain from its last record. */
  static async open(path: string): Promise<AuditTrail> {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const last = lines.length > 0 ? (JSON.parse(lines[lines.length - 1] as string) as AuditRecord) : undefined;
    return new AuditTrail(path, last?.seq ?? 0, last?.hash ?? GENESIS);
  }

  /** Appends one record; records are written in call order, one write per line (O_APPEND). */
  append(fields: AuditFields): Promise<void> {
    const write = this.queue.then(async () => {
      const body = { ...fields, seq: this.seq + 1, time: new Date().toISOString(), prev_hash: this.lastHash };
      const hash = recordHash(body);
      await appendFile(this.path, `${JSON.stringify({ ...body, hash })}\n`, { mode: 0o600 });
      this.seq = body.seq;
      this.lastHash = hash;
    });
    this.queue = write.catch(() => undefined);
    return write;
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  problems: { line: number; seq: number | undefined; problem: string }[];
}

export async function verifyAuditTrail(path: string): Promise<VerifyResult> {
  const lines = (await readFile(path, 'utf8')).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const problems: VerifyResult['problems'] = [];
  let prevHash = GENESIS;
  let expectedSeq = 1;
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    let rec: AuditRecord;
    try {
      rec = JSON.parse(line) as AuditRecord;
    } catch {
      problems.push({ line: lineNo, seq: undefined, problem: 'not a JSON record' });
      return;
    }
    const { hash, ...body } = rec;
    if (rec.seq !== expectedSeq) {
      problems.push({ line: lineNo, seq: rec.seq, problem: `expected record ${expectedSeq} here: ${rec.seq > expectedSeq ? `records ${expectedSeq}..${rec.seq - 1} were removed` : 'records were reordered or duplicated'}` });
    } else if (rec.prev_hash !== prevHash) {
      problems.push({ line: lineNo, seq: rec.seq, problem: 'does not chain to the record before it (a record before it was changed or removed)' });
    }
    if (recordHash(body) !== hash) problems.push({ line: lineNo, seq: rec.seq, problem: 'its content does not match its hash: the record was edited' });
    prevHash = hash;
    expectedSeq = (typeof rec.seq === 'number' ? rec.seq : expectedSeq) + 1;
  });
  return { ok: problems.length === 0, records: lines.length, problems };
}
