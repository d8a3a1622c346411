import { runService } from '../shared/service-main.js';
import { startExecutor } from './app.js';
import { loadExecutorConfig } from './config.js';

/** `node dist/src/executor/main.js --config executor.yaml` */
await runService({
  name: 'executor',
  configEnv: 'TOOLGATE_EXECUTOR_CONFIG',
  start: async (path, log, tracing) => startExecutor(await loadExecutorConfig(path), { log, tracing }),
});
