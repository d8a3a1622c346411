import type { Attributes } from '@opentelemetry/api';
import { ToolError } from '../../envelope.js';

/**
 * The Kubernetes API as a tool sees it: in a Job, the projected service-account token (in-cluster config);
 * KUBECONFIG when set (tests against a local apiserver). Loaded lazily: tools that need no cluster never
 * pay for the client library.
 */
export async function kubeConfig(): Promise<import('@kubernetes/client-node').KubeConfig> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (process.env.KUBECONFIG) kc.loadFromFile(process.env.KUBECONFIG);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else throw new ToolError('no Kubernetes API here: not running in a cluster and KUBECONFIG is not set', 'no_cluster');
  return kc;
}

/** Maps API errors to messages an agent can act on. */
export function apiError(err: unknown, what: string): ToolError {
  const e = err as { code?: number; statusCode?: number; body?: unknown; message?: string };
  const status = e.code ?? e.statusCode;
  const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
  const detail = (body as { message?: string } | undefined)?.message ?? e.message ?? String(err);
  if (status === 404) return new ToolError(`${what} not found`, 'not_found');
  if (status === 403) return new ToolError(`forbidden: ${detail}`, 'forbidden');
  if (status === 401) return new ToolError(`unauthorized: ${detail}`, 'unauthorized');
  if (status === 409) return new ToolError(`conflict: ${detail}`, 'conflict');
  if (status === 422) return new ToolError(`invalid: ${detail}`, 'invalid');
  return new ToolError(`Kubernetes API error${status ? ` ${status}` : ''}: ${detail}`, 'api_error');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

/** Span attributes of one Kubernetes API request (OpenTelemetry k8s.* and http.* conventions). */
export function k8sAttributes(method: string, namespace: string, more: Attributes = {}): Attributes {
  return { 'http.request.method': method, 'k8s.namespace.name': namespace, ...more };
}
