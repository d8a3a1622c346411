/** Pinned versions of the real components that tests and the gateway run. Bump here only. */
export const VERSIONS = {
  envoy: '1.40.0',
  opa: 'v1.19.1',
  opaEnvoyPlugin: 'v1.19.1-envoy',
} as const;
