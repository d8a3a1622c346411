import { BatchV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe } from 'vitest';
import { ensureMcpPython } from '../support/mcp-python.js';
import { startControlPlane, type ControlPlane } from '../support/kube/control-plane.js';
import { EXEC_NS, startExecutionCluster } from '../support/kube/execution-cluster.js';
import type { NodeStandIn } from '../support/kube/node-standin.js';
import { catalogWithSleepTimeout, mcpJwt, mcpScenarios, type McpTarget } from './mcp-scenarios.js';
import { startStack, type Stack } from './stack.js';

/**
 * The MCP scenarios with the Kubernetes Job runner against the real kube-apiserver, etcd and
 * kube-controller-manager (see kubernetes-jobs.test.ts): each tools/call is a Job; a cancelled or timed-out
 * call's Job is gone from the apiserver. A Job's deadline counts pod scheduling and start-up, hence the timeouts.
 */
const SLEEP_TIMEOUT_S = 6;
/** 20 pods starting at once on a busy 2-core machine took over 10 s (echo's catalog timeout) for some. */
const ECHO_TIMEOUT_S = 60;

describe('MCP through Envoy with the Kubernetes Job runner', () => {
  let plane: ControlPlane;
  let node: NodeStandIn;
  let stack: Stack;
  let target: McpTarget;

  beforeAll(async () => {
    const python = await ensureMcpPython();
    plane = await startControlPlane();
    const catalogPath = await catalogWithSleepTimeout(plane.dir, SLEEP_TIMEOUT_S, ECHO_TIMEOUT_S);
    const cluster = await startExecutionCluster(catalogPath, plane);
    node = cluster.node;
    stack = await startStack({ engine: 'embedded', executor: 'kubernetes', kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS }, catalogPath, maxInFlight: 24, maxInFlightPerAgent: 24, audit: true });
    const batch = cluster.admin.makeApiClient(BatchV1Api);
    target = {
      stack,
      jwt: await mcpJwt(stack, 'ops-bot'),
      runner: 'kubernetes',
      python,
      // Jobs of the sleep tool the apiserver still holds that have not finished.
      runningSleeps: async () =>
        (await batch.listNamespacedJob({ namespace: EXEC_NS, labelSelector: 'toolgate.dev/tool=sleep' })).items.filter((j) => !j.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')).length,
      toolProcesses: async () => node.running(),
      sleepTimeoutSeconds: SLEEP_TIMEOUT_S,
    };
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await node?.stop();
    await plane?.stop();
  });

  mcpScenarios(() => target);
});
