import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ensureH2load } from '../../src/toolchain/h2load.js';

const run = promisify(execFile);

// Installed (from Debian's nghttp2-client) on first use.
let h2loadPath: Promise<string> | undefined;

/** One h2load run over HTTP/1.1 (as agents call): throughput, status classes, and per-request latencies. */
export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  status2xx: number;
  status4xx: number;
  status5xx: number;
  failed: number;
  latenciesMs: number[];
}

export interface LoadSpec {
  url: string;
  /** A file of URIs (one a line) requested in turn instead of `url` (h2load -i); scheme and host from the first. */
  urisFile?: string;
  headers: Record<string, string>;
  bodyFile: string;
  clients: number;
  /** Saturation: a fixed number of requests as fast as they go. */
  requests?: number;
  /** Fixed rate: total requests/s (spread over the clients) for `seconds`. */
  rate?: number;
  seconds?: number;
  logFile: string;
}

export async function h2load(spec: LoadSpec): Promise<LoadResult> {
  const args = ['--h1', '-c', String(spec.clients), '-d', spec.bodyFile, '--log-file', spec.logFile];
  for (const [k, v] of Object.entries(spec.headers)) args.push('-H', `${k}: ${v}`);
  if (spec.rate !== undefined) {
    // h2load's --rps is per client; -D bounds the run by time.
    args.push('--rps', String(spec.rate / spec.clients), '-D', String(spec.seconds ?? 10));
  } else {
    args.push('-n', String(spec.requests ?? 10_000));
  }
  args.push(...(spec.urisFile ? ['-i', spec.urisFile] : [spec.url]));
  await rm(spec.logFile, { force: true });
  h2loadPath ??= ensureH2load();
  const { stdout } = await run(await h2loadPath, args, { maxBuffer: 16 * 1024 * 1024 });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? NaN);
  // Log lines: start time (µs), status, duration (µs).
  const latenciesMs = (await readFile(spec.logFile, 'utf8'))
    .split('\n')
    .filter((l) => l)
    .map((l) => Number(l.split('\t')[2]) / 1000);
  return {
    requests: num(/requests: \d+ total, \d+ started, (\d+) done/),
    seconds: elapsedSeconds(stdout),
    rps: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
    status2xx: num(/status codes: (\d+) 2xx/),
    status4xx: num(/status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx/),
    status5xx: num(/status codes: \d+ 2xx, \d+ 3xx, \d+ 4xx, (\d+) 5xx/),
    failed: num(/requests: .* (\d+) failed/),
    latenciesMs,
  };
}

/** h2load prints "finished in 1.23s" or, under a second, "finished in 785.12ms". */
function elapsedSeconds(stdout: string): number {
  const m = /finished in ([\d.]+)(m?s)/.exec(stdout);
  return m ? Number(m[1]) / (m[2] === 'ms' ? 1000 : 1) : NaN;
}
