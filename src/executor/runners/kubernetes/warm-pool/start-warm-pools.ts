import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ToolDefinition } from '../../../../catalog/tool-catalog.js';
import type { KubernetesRunnerConfig } from '../../../config.js';
import type { Logger } from '../../../../shared/logger.js';
import type { KubernetesJobRunner } from '../kubernetes-job-runner.js';
import { ClaimChannel } from './claim-channel.js';
import { PooledKubernetesRunner } from './pooled-runner.js';
import { WarmPools } from './warm-pools.js';

/** Warm pools for the catalog's tools that opt in (execution.warm_pool.size > 0); undefined when none does. */
export async function startWarmPools(
  r: KubernetesRunnerConfig,
  jobs: KubernetesJobRunner,
  instance: string,
  tools: ToolDefinition[],
  log: Logger,
): Promise<{ runner: PooledKubernetesRunner; routes: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => boolean)[] } | undefined> {
  const pooled = tools.filter((t) => (t.execution.warm_pool?.size ?? 0) > 0);
  if (pooled.length === 0) return undefined;
  const kubeConfig = new KubeConfig();
  if (r.kubeconfig) kubeConfig.loadFromFile(r.kubeconfig);
  else kubeConfig.loadFromCluster();
  let pools: WarmPools | undefined = undefined;
  const claims = new ClaimChannel((pod) => void pools?.markReady(pod));
  pools = new WarmPools({
    core: kubeConfig.makeApiClient(CoreV1Api),
    namespace: r.namespace,
    image: r.image,
    command: r.command,
    defaultServiceAccount: r.default_service_account,
    instance,
    callbackBaseUrl: r.callback_url,
    ...(r.otel_exporter_otlp_endpoint ? { otelEndpoint: r.otel_exporter_otlp_endpoint } : {}),
    tools: pooled,
    claims,
    results: jobs.channel,
    log: log.child('warm-pool'),
  });
  await pools.start();
  log.info('warm pools', { tools: pooled.map((t) => `${t.name}:${t.execution.warm_pool?.size}`).join(',') });
  return { runner: new PooledKubernetesRunner(jobs, pools), routes: [jobs.channel.handle, claims.handle] };
}
