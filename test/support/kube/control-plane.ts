import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import { ensureKubeBinaries } from '../../../src/toolchain/kube.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../managed-process.js';

const run = promisify(execFile);

/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on, service-account tokens) and
 * kube-controller-manager (Job, TTL-after-finished, garbage collector, root-CA publisher...). Nodes join it
 * from real-node.ts: then it listens on the node's bridge address (pods reach it there through the
 * `kubernetes` Service) instead of loopback, and authorizes kubelets as nodes (Node,RBAC + NodeRestriction).
 */
export interface ControlPlane {
  apiserverUrl: string;
  caCertPath: string;
  adminKubeconfigPath: string;
  dir: string;
  /** Its processes' pids (etcd, apiserver, controller-manager): each one's command line names `dir`. */
  pids(): number[];
  admin(): KubeConfig;
  kubeconfigForServiceAccount(namespace: string, name: string, expirationSeconds?: number): Promise<string>;
  /** A kubeconfig with a client certificate of this subject (e.g. a kubelet's system:node:<name>). */
  kubeconfigForCertificate(name: string, subject: string): Promise<string>;
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

async function issueClientCert(dir: string, name: string, subject: string): Promise<void> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-key.pem`], dir);
  await openssl(['req', '-new', '-key', `${name}-key.pem`, '-subj', subject, '-out', `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), 'extendedKeyUsage=clientAuth\n');
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
}

async function makePki(dir: string, hostAddress: string): Promise<void> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem'], dir);
  await openssl(['req', '-x509', '-new', '-key', 'ca-key.pem', '-days', '2', '-subj', '/CN=toolgate-test-kube-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem'], dir);
  const issue = async (name: string, subject: string, ext: string): Promise<void> => {
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-key.pem`], dir);
    await openssl(['req', '-new', '-key', `${name}-key.pem`, '-subj', subject, '-out', `${name}.csr`], dir);
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
  };
  await issue('apiserver', '/CN=kube-apiserver', `subjectAltName=IP:127.0.0.1,IP:${hostAddress},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n`);
  await issue('admin', '/O=system:masters/CN=toolgate-test-admin', 'extendedKeyUsage=clientAuth\n');
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa-key.pem'], dir);
  await openssl(['pkey', '-in', 'sa-key.pem', '-pubout', '-out', 'sa.pub'], dir);
}

function kubeconfigYaml(server: string, caPath: string, user: Record<string, string>): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority': caPath } }],
    users: [{ name: 'user', user }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'user' } }],
    'current-context': 'local',
  });
}

export async function startControlPlane(opts: { logDir?: string; /** Where a real node reaches it: its bridge address. */ hostAddress?: string } = {}): Promise<ControlPlane> {
  const bins = await ensureKubeBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-kube-'));
  const logDir = opts.logDir ?? join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  const address = opts.hostAddress ?? '127.0.0.1';
  await makePki(dir, address);
  const processes: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of processes.reverse()) await p.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const etcdPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = startProcess({
      name: 'etcd',
      command: bins.etcd,
      args: ['--data-dir', join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl, '--listen-peer-urls', 'http://127.0.0.1:0', '--log-level', 'error', '--unsafe-no-fsync'],
      logDir,
    });
    processes.push(etcd);
    await waitForHttp(`${etcdUrl}/health`, { process: etcd, timeoutMs: 30_000 });

    const port = await freePort();
    const apiserverUrl = `https://${address}:${port}`;
    const apiserver = startProcess({
      name: 'kube-apiserver',
      command: bins.kubeApiserver,
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(dir, 'apiserver.pem')}`,
        `--tls-private-key-file=${join(dir, 'apiserver-key.pem')}`,
        `--client-ca-file=${join(dir, 'ca.pem')}`,
        `--secure-port=${port}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        ...(opts.hostAddress ? ['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction', '--kubelet-preferred-address-types=InternalIP', `--kubelet-client-certificate=${join(dir, 'admin.pem')}`, `--kubelet-client-key=${join(dir, 'admin-key.pem')}`] : ['--authorization-mode=RBAC']),
        `--service-account-issuer=${apiserverUrl}/`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa-key.pem')}`,
        '--enable-priority-and-fairness=false',
        '--v=0',
      ],
      logDir,
    });
    processes.push(apiserver);

    const adminKubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeFile(adminKubeconfigPath, kubeconfigYaml(apiserverUrl, join(dir, 'ca.pem'), { 'client-certificate': join(dir, 'admin.pem'), 'client-key': join(dir, 'admin-key.pem') }));
    const admin = (): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromFile(adminKubeconfigPath);
      return kc;
    };
    await waitForApiserver(admin(), apiserver);

    const kcm = startProcess({
      name: 'kube-controller-manager',
      command: bins.kubeControllerManager,
      args: [
        `--kubeconfig=${adminKubeconfigPath}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        `--service-account-private-key-file=${join(dir, 'sa-key.pem')}`,
        `--root-ca-file=${join(dir, 'ca.pem')}`,
        '--use-service-account-credentials=false',
        '--concurrent-job-syncs=10',
        '--concurrent-ttl-after-finished-syncs=10',
        '--v=0',
      ],
      logDir,
    });
    processes.push(kcm);

    return {
      apiserverUrl,
      caCertPath: join(dir, 'ca.pem'),
      adminKubeconfigPath,
      dir,
      admin,
      kubeconfigForServiceAccount: async (namespace, name, expirationSeconds = 3600) => {
        const core = admin().makeApiClient(CoreV1Api);
        const tr = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds } } });
        const path = join(dir, `sa-${namespace}-${name}-${Date.now()}.kubeconfig`);
        await writeFile(path, kubeconfigYaml(apiserverUrl, join(dir, 'ca.pem'), { token: tr.status?.token ?? '' }), { mode: 0o600 });
        return path;
      },
      kubeconfigForCertificate: async (name, subject) => {
        await issueClientCert(dir, name, subject);
        const path = join(dir, `${name}.kubeconfig`);
        await writeFile(path, kubeconfigYaml(apiserverUrl, join(dir, 'ca.pem'), { 'client-certificate': join(dir, `${name}.pem`), 'client-key': join(dir, `${name}-key.pem`) }), { mode: 0o600 });
        return path;
      },
      pids: () => processes.map((p) => p.pid),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForApiserver(kc: KubeConfig, proc: ManagedProcess): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.hasExited()) throw new Error(`kube-apiserver exited:\n${proc.logTail()}`);
    try {
      await core.listNamespace();
      // The default service account and RBAC bootstrap roles arrive shortly after the API answers.
      await core.readNamespace({ name: 'default' });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready: ${(err as Error).message}\n${proc.logTail()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
