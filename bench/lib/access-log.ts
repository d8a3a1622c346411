import { open, stat } from 'node:fs/promises';

/** Where an access log ends now, so a later read takes only the lines of one run. */
export async function accessLogEnd(path: string): Promise<number> {
  return (await stat(path).catch(() => ({ size: 0 }))).size;
}

/**
 * Each check's round trip as the front Envoy measured it (`authz_us` in envoy/toolgate.yaml's access log),
 * from the lines written after `from`. Envoy flushes access logs on a timer (--file-flush-interval-msec),
 * so the caller waits for one flush after the run before reading.
 */
export async function authzRoundTripsUs(path: string, from: number): Promise<number[]> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const buf = Buffer.alloc(Math.max(0, size - from));
    await file.read(buf, 0, buf.length, from);
    const out: number[] = [];
    for (const line of buf.toString('utf8').split('\n')) {
      const m = /"authz_us":"?(\d+)/.exec(line);
      if (m) out.push(Number(m[1]));
    }
    return out;
  } finally {
    await file.close();
  }
}
