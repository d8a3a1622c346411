import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe } from 'vitest';
import { ensureMcpPython } from '../support/mcp-python.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXEC_NS, startExecutionCluster, type ExecutionCluster } from '../support/kube/execution-cluster.js';
import { catalogWithSleepTimeout, mcpJwt, mcpScenarios, type McpTarget } from './mcp-scenarios.js';
import { startStack, type Stack } from './stack.js';

/**
 * The MCP scenarios with the Kubernetes Job runner on a real node (kube-apiserver, etcd, controller-manager,
 * scheduler, kubelet with containerd and runc: see kubernetes-jobs.test.ts): each tools/call is a Job whose
 * pod runs the runner image; a cancelled or timed-out call's Job and pod are gone. A Job's deadline counts pod scheduling and start-up, hence the timeouts.
 */
const SLEEP_TIMEOUT_S = 6;
/** 20 pods starting at once on a busy 2-core machine took over 10 s (echo's catalog timeout) for some. */
const ECHO_TIMEOUT_S = 60;

describe('MCP through Envoy with the Kubernetes Job runner', () => {
  let cluster: ExecutionCluster;
  let stack: Stack;
  let target: McpTarget;

  beforeAll(async () => {
    const python = await ensureMcpPython();
    const catalogPath = await catalogWithSleepTimeout(await mkdtemp(join(tmpdir(), 'toolgate-mcp-catalog-')), SLEEP_TIMEOUT_S, ECHO_TIMEOUT_S);
    cluster = await startExecutionCluster(catalogPath);
    stack = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, ...cluster.runner }, catalogPath, maxInFlight: 24, maxInFlightPerAgent: 24, audit: true });
    const batch = cluster.admin.makeApiClient(BatchV1Api);
    const core = cluster.admin.makeApiClient(CoreV1Api);
    target = {
      stack,
      jwt: await mcpJwt(stack, 'ops-bot'),
      runner: 'kubernetes',
      python,
      // Jobs of the sleep tool the apiserver still holds that have not finished.
      runningSleeps: async () =>
        (await batch.listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.filter((j) => !j.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')).length,
      // Tool pods whose container has not ended: what the node still runs or is about to run.
      toolProcesses: async () =>
        (await core.listNamespacedPod({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.filter((p) => p.status?.phase === 'Pending' || p.status?.phase === 'Running').length,
      sleepTimeoutSeconds: SLEEP_TIMEOUT_S,
    };
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  mcpScenarios(() => target);
});
