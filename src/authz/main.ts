import { createLogger, errorMessage } from '../shared/logger.js';
import { startTracing } from '../shared/tracing.js';
import { startAuthz } from './app.js';
import { loadAuthzConfig } from './config.js';

/** `node dist/src/authz/main.js --config authz.yaml` */
const log = createLogger('authz');

function configPath(argv: string[]): string {
  const i = argv.indexOf('--config');
  const path = i === -1 ? process.env.TOOLGATE_AUTHZ_CONFIG : argv[i + 1];
  if (!path) {
    process.stderr.write('usage: authz --config <authz.yaml>  (or TOOLGATE_AUTHZ_CONFIG)\n');
    process.exit(2);
  }
  return path;
}

try {
  const config = await loadAuthzConfig(configPath(process.argv.slice(2)));
  const tracing = startTracing('toolgate-authz');
  const server = await startAuthz(config, log, tracing);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    server
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
  log.error('authz server failed to start', { cause: errorMessage(err) });
  process.exit(1);
}
