import { runService } from '../shared/service-main.js';
import { startAuthz } from './app.js';
import { loadAuthzConfig } from './config.js';

/** `node dist/src/authz/main.js --config authz.yaml` */
await runService({
  name: 'authz',
  configEnv: 'TOOLGATE_AUTHZ_CONFIG',
  start: async (path, log, tracing) => startAuthz(await loadAuthzConfig(path), log, tracing),
});
