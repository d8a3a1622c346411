/** Pinned versions of the real components that tests and the gateway run. Bump here only. */
export const VERSIONS = {
  envoy: '1.40.0',
  opa: 'v1.19.1',
  opaEnvoyPlugin: 'v1.19.1-envoy',
  kubernetes: 'v1.34.4',
  etcd: 'v3.6.16',
  otelCollector: 'v0.159.0',
  helm: 'v3.21.4',
  /** PyPI package with the JSON schemas of Kubernetes releases, for offline manifest validation. */
  kubernetesValidate: '1.34.1',
} as const;
