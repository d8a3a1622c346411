import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Development credentials for the one-machine gateway and the end-to-end tests: a CA that signs Envoy's
 * serving certificate and the agents' client certificates (SPIFFE IDs in URI SANs), and a JWT signing key
 * with its JWKS for Envoy's jwt_authn, and the key the authz server and the executor share to attest each
 * allowed call. Never for production: real deployments bring their own CA and issuer.
 */
export interface DevCredentials {
  dir: string;
  caCertPath: string;
  caKeyPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  jwksPath: string;
  jwtKeyPath: string;
  jwtIssuer: string;
  jwtAudience: string;
  jwtKeyId: string;
  /** Shared by the authz server and the executor (decision attestation). */
  decisionKeyPath: string;
}

const ISSUER = 'https://toolgate.local/dev-issuer';
const AUDIENCE = 'toolgate';
const KEY_ID = 'toolgate-dev-1';

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Idempotent: files that exist are reused, so a restart keeps the same CA and signing key. */
export async function ensureDevCredentials(dir: string): Promise<DevCredentials> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const creds: DevCredentials = {
    dir,
    caCertPath: join(dir, 'ca.pem'),
    caKeyPath: join(dir, 'ca-key.pem'),
    serverCertPath: join(dir, 'server.pem'),
    serverKeyPath: join(dir, 'server-key.pem'),
    jwksPath: join(dir, 'jwks.json'),
    jwtKeyPath: join(dir, 'jwt-key.pem'),
    jwtIssuer: ISSUER,
    jwtAudience: AUDIENCE,
    jwtKeyId: KEY_ID,
    decisionKeyPath: join(dir, 'decision.key'),
  };
  await ensureCa(creds.caCertPath, creds.caKeyPath, '/O=toolgate/CN=toolgate development CA', dir);
  if (!(await exists(creds.serverCertPath))) {
    await issue(creds, 'server', '/O=toolgate/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1', 'serverAuth', creds.serverCertPath, creds.serverKeyPath);
  }
  if (!(await exists(creds.jwtKeyPath)) || !(await exists(creds.jwksPath))) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(creds.jwtKeyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KEY_ID, alg: 'ES256', use: 'sig' };
    await writeFile(creds.jwksPath, JSON.stringify({ keys: [jwk] }, null, 2));
  }
  if (!(await exists(creds.decisionKeyPath))) await writeFile(creds.decisionKeyPath, `${randomBytes(48).toString('base64')}\n`, { mode: 0o600 });
  return creds;
}

async function issue(creds: DevCredentials, name: string, subject: string, san: string, eku: string, certPath: string, keyPath: string): Promise<void> {
  await issueCertificate({ certPath: creds.caCertPath, keyPath: creds.caKeyPath }, creds.dir, name, subject, san, eku, certPath, keyPath);
}

/** An EC key and a certificate for it, signed by `ca`; `name` names the scratch files (CSR, extensions) in `dir`. */
export async function issueCertificate(ca: { certPath: string; keyPath: string }, dir: string, name: string, subject: string, san: string, eku: string, certPath: string, keyPath: string): Promise<void> {
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPath], dir);
  await openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-out', csr], dir);
  await writeFile(ext, `${san}\nextendedKeyUsage=${eku}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-days', '825', '-sha256', '-extfile', ext, '-out', certPath], dir);
}

/** A self-signed CA (EC P-256) for `subject`, unless one is already there. */
export async function ensureCa(certPath: string, keyPath: string, subject: string, dir: string): Promise<void> {
  if ((await exists(certPath)) && (await exists(keyPath))) return;
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPath], dir);
  await openssl(
    ['req', '-x509', '-new', '-key', keyPath, '-sha256', '-days', '3650', '-subj', subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', certPath],
    dir,
  );
}

/** A client certificate for an agent: its SPIFFE ID in the URI SAN, which Envoy reports as the principal. */
export async function issueAgentCertificate(creds: DevCredentials, spiffeId: string, name: string): Promise<{ certPath: string; keyPath: string }> {
  if (!/^spiffe:\/\/[a-z0-9.-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/.test(spiffeId)) throw new Error(`not a SPIFFE ID: ${spiffeId}`);
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`certificate name must be [a-z0-9-]+: ${name}`);
  const certPath = join(creds.dir, `agent-${name}.pem`);
  const keyPath = join(creds.dir, `agent-${name}-key.pem`);
  if (!(await exists(certPath))) await issue(creds, `agent-${name}`, `/O=toolgate/CN=${name}`, `subjectAltName=URI:${spiffeId}`, 'clientAuth', certPath, keyPath);
  return { certPath, keyPath };
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** An ES256 JWT signed with the development key, accepted by the gateway's jwt_authn provider. */
export async function signAgentJwt(
  creds: DevCredentials,
  claims: Record<string, unknown>,
  opts: { expiresInSeconds?: number; issuer?: string; audience?: string; keyId?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: opts.issuer ?? creds.jwtIssuer, aud: opts.audience ?? creds.jwtAudience, iat: now, exp: now + (opts.expiresInSeconds ?? 3600), ...claims };
  const header = { alg: 'ES256', typ: 'JWT', kid: opts.keyId ?? creds.jwtKeyId };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const key = createPrivateKey(await readFile(creds.jwtKeyPath));
  // JWS wants the raw r||s form of an ECDSA signature, not DER.
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${b64url(signature)}`;
}

