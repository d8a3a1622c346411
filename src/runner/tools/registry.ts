import type { ToolImplementation } from './tool.js';

/** Tool name -> implementation, loaded on demand so a call only loads the code of its own tool. */
export const TOOL_REGISTRY: Readonly<Record<string, () => Promise<ToolImplementation>>> = {
  echo: async () => (await import('./basic.js')).echo,
  sleep: async () => (await import('./basic.js')).sleep,
  fail: async () => (await import('./basic.js')).fail,
  sandbox_info: async () => (await import('./diagnostics.js')).sandboxInfo,
  allocate_memory: async () => (await import('./diagnostics.js')).allocateMemory,
  sandbox_limits: async () => (await import('./diagnostics.js')).sandboxLimits,
  k8s_get_deployment: async () => (await import('./k8s/deployments.js')).getDeployment,
  k8s_scale_deployment: async () => (await import('./k8s/deployments.js')).scaleDeployment,
  k8s_list_pods: async () => (await import('./k8s/pods.js')).listPods,
  k8s_get_pod_logs: async () => (await import('./k8s/pods.js')).getPodLogs,
  k8s_get_secret: async () => (await import('./k8s/pods.js')).getSecretKeys,
};
