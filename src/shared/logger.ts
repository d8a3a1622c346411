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

export function createLogger(component: string, sink: (line: string) => void = (l) => process.stderr.write(l)): Logger {
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
