import { createLogger, errorMessage } from '../shared/logger.js';
import { startTracing } from '../shared/tracing.js';
import { startExecutor } from './app.js';
import { loadExecutorConfig } from './config.js';

/** `node dist/src/executor/main.js --config executor.yaml` */
const log = createLogger('executor');
const argv = process.argv.slice(2);
const i = argv.indexOf('--config');
const path = i === -1 ? process.env.TOOLGATE_EXECUTOR_CONFIG : argv[i + 1];
if (!path) {
  process.stderr.write('usage: executor --config <executor.yaml>  (or TOOLGATE_EXECUTOR_CONFIG)\n');
  process.exit(2);
}

try {
  const tracing = startTracing('toolgate-executor');
  const executor = await startExecutor(await loadExecutorConfig(path), { log, tracing });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    executor
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
  log.error('executor failed to start', { cause: errorMessage(err) });
  process.exit(1);
}
