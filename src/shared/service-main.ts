import { createLogger, errorMessage, type Logger } from './logger.js';
import { startTracing, type Tracing } from './tracing.js';

/**
 * The life of a toolgate service process: `--config <file>` (or an environment variable), tracing, start,
 * and on SIGTERM/SIGINT a graceful stop that flushes spans before exiting. A failure to start is logged
 * with its cause and exits 1; a missing config path exits 2.
 */
export async function runService(opts: {
  name: string;
  configEnv: string;
  start: (configPath: string, log: Logger, tracing: Tracing) => Promise<{ stop(): Promise<void> }>;
}): Promise<void> {
  const log = createLogger(opts.name);
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--config');
  const path = i === -1 ? process.env[opts.configEnv] : argv[i + 1];
  if (!path) {
    process.stderr.write(`usage: ${opts.name} --config <${opts.name}.yaml>  (or ${opts.configEnv})\n`);
    process.exit(2);
  }
  try {
    const tracing = startTracing(`toolgate-${opts.name}`);
    const service = await opts.start(path, log, tracing);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('shutting down', { signal });
      service
        .stop()
        .then(() => tracing.shutdown())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            log.error('shutdown failed', { cause: errorMessage(err) });
            process.exit(1);
          },
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  } catch (err) {
    log.error(`${opts.name} failed to start`, { cause: errorMessage(err) });
    process.exit(1);
  }
}
