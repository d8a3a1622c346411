/**
 * Structured JSON-lines logging to stderr: one object per line so operators can grep and ship it as is.
 * Deliberately tiny: the hot path calls it once per decision, so no formatting beyond JSON.stringify.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(component: string): Logger;
}

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function envLevel(): Level {
  const raw = (process.env.TOOLGATE_LOG_LEVEL ?? 'info').toLowerCase();
  return raw in ORDER ? (raw as Level) : 'info';
}

/**
 * Lines written within a millisecond go out in one write: under load the decision log is one line per
 * check, and a write(2) per line was a measurable share of the check path. The flush is a timer, not an
 * immediate, so the answer to the check that logged (which gRPC writes from an immediate) leaves first.
 * Flushed when 64 KiB are pending and synchronously when the process exits, so no line is lost.
 */
class CoalescingStderr {
  private pending: string[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor() {
    process.on('exit', () => this.flush());
  }

  write = (line: string): void => {
    this.pending.push(line);
    this.bytes += line.length;
    if (this.bytes >= 64 * 1024) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), 1);
    }
  };

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.bytes = 0;
    // Synchronous for files and pipes on Linux, so the exit flush completes too.
    process.stderr.write(text);
  }
}

let stderrSink: CoalescingStderr | undefined;
const defaultSink = (line: string): void => (stderrSink ??= new CoalescingStderr()).write(line);

export function createLogger(component: string, sink: (line: string) => void = defaultSink): Logger {
  const min = ORDER[envLevel()];
  const write = (level: Level, msg: string, fields?: LogFields): void => {
    if (ORDER[level] < min) return;
    sink(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields })}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (sub) => createLogger(`${component}.${sub}`, sink),
  };
}

/** Renders an unknown thrown value as a message an operator can act on. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
