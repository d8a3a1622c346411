import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCa, exists, issueCertificate } from './dev-credentials.js';

/**
 * Credentials of the internal hop from Envoy to the authz server on one machine (`npm run gateway`, tests):
 * a CA of its own, never the agents' CA (an agent's client certificate must not open the authz port), a
 * serving certificate for the authz server and a client certificate for Envoy. Files are 0600 in a 0700
 * directory: a sandboxed tool (another uid, a view without this directory) cannot read them. The Helm
 * chart makes the same three in a Secret (templates/internal-tls.yaml).
 */
export interface InternalCredentials {
  caCertPath: string;
  authzCertPath: string;
  authzKeyPath: string;
  envoyCertPath: string;
  envoyKeyPath: string;
}

/** The name Envoy expects in the authz server's certificate, and the identity only Envoy's certificate carries. */
export const AUTHZ_SERVER_NAME = 'authz.toolgate.internal';
export const ENVOY_CLIENT_ID = 'spiffe://toolgate.internal/envoy';

export async function ensureInternalCredentials(dir: string): Promise<InternalCredentials> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { certPath: join(dir, 'internal-ca.pem'), keyPath: join(dir, 'internal-ca-key.pem') };
  const creds: InternalCredentials = {
    caCertPath: ca.certPath,
    authzCertPath: join(dir, 'authz.pem'),
    authzKeyPath: join(dir, 'authz-key.pem'),
    envoyCertPath: join(dir, 'envoy-client.pem'),
    envoyKeyPath: join(dir, 'envoy-client-key.pem'),
  };
  await ensureCa(ca.certPath, ca.keyPath, '/O=toolgate/CN=toolgate internal CA', dir);
  if (!(await exists(creds.authzCertPath))) {
    await issueCertificate(ca, dir, 'authz', `/O=toolgate/CN=${AUTHZ_SERVER_NAME}`, `subjectAltName=DNS:${AUTHZ_SERVER_NAME}`, 'serverAuth', creds.authzCertPath, creds.authzKeyPath);
  }
  if (!(await exists(creds.envoyCertPath))) {
    await issueCertificate(ca, dir, 'envoy-client', '/O=toolgate/CN=envoy', `subjectAltName=URI:${ENVOY_CLIENT_ID}`, 'clientAuth', creds.envoyCertPath, creds.envoyKeyPath);
  }
  return creds;
}

/** The authz server's grpc.tls config for these credentials. */
export function authzServerTls(creds: InternalCredentials): { cert_file: string; key_file: string; client_ca_file: string; client_names: string[] } {
  return { cert_file: creds.authzCertPath, key_file: creds.authzKeyPath, client_ca_file: creds.caCertPath, client_names: [ENVOY_CLIENT_ID] };
}

/** Envoy's template values for the authenticated hop to the authz server. */
export function envoyAuthzTlsValues(creds: InternalCredentials): { AUTHZ_TLS: true; AUTHZ_TLS_NAME: string; INTERNAL_CA_PATH: string; INTERNAL_CLIENT_CERT_PATH: string; INTERNAL_CLIENT_KEY_PATH: string } {
  return { AUTHZ_TLS: true, AUTHZ_TLS_NAME: AUTHZ_SERVER_NAME, INTERNAL_CA_PATH: creds.caCertPath, INTERNAL_CLIENT_CERT_PATH: creds.envoyCertPath, INTERNAL_CLIENT_KEY_PATH: creds.envoyKeyPath };
}
