import { AuthorizationV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadToolCatalogFile } from '../../src/catalog/tool-catalog.js';
import { toolRbac } from '../../src/catalog/rbac-manifests.js';
import { parseAuthzConfig } from '../../src/authz/config.js';
import { parseExecutorConfig } from '../../src/executor/config.js';
import { ensureDevCredentials } from '../../src/gateway/dev-credentials.js';
import { ensureInternalCredentials } from '../../src/gateway/internal-credentials.js';
import { REPO_ROOT } from '../../src/shared/repo-paths.js';
import { ensureHelm } from '../../src/toolchain/install.js';
import { ensureKubernetesValidate } from '../../src/toolchain/kubernetes-validate.js';
import { validateEnvoyConfig } from '../support/envoy-process.js';
import { startControlPlane, type ControlPlane } from '../support/kube/control-plane.js';

const run = promisify(execFile);
const CHART = join(REPO_ROOT, 'helm', 'toolgate');
const ALL_OPTIONS = join(REPO_ROOT, 'test', 'fixtures', 'helm-values-all-options.yaml');
const RELEASE = 'toolgate';
const RELEASE_NS = 'toolgate-system';
// The kube-apiserver the tests run (a go-installed helm otherwise assumes an old default).
const KUBE_VERSION = '1.34.4';

type Manifest = KubernetesObject & { metadata: { name: string; namespace?: string }; [k: string]: unknown };

/**
 * The Helm chart as platform teams install it: lint, render (default values and every option), offline
 * schema validation, a server-side dry-run against a real kube-apiserver, the RBAC it grants checked with
 * SubjectAccessReviews, and the Envoy config it renders through `envoy --mode validate`.
 */
describe('Helm chart', () => {
  let helm: string;
  let dir: string;
  let plane: ControlPlane;
  let admin: KubeConfig;
  const rendered: Record<'default' | 'all', Manifest[]> = { default: [], all: [] };
  const renderedText: Record<'default' | 'all', string> = { default: '', all: '' };

  const template = async (extra: string[]): Promise<string> => (await run(helm, ['template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', KUBE_VERSION, ...extra], { maxBuffer: 32 * 1024 * 1024 })).stdout;

  beforeAll(async () => {
    [helm, plane] = await Promise.all([ensureHelm(), startControlPlane()]);
    admin = plane.admin();
    dir = await mkdtemp(join(tmpdir(), 'toolgate-helm-'));
    renderedText.default = await template([]);
    renderedText.all = await template(['-f', ALL_OPTIONS]);
    for (const k of ['default', 'all'] as const) {
      rendered[k] = parseAllDocuments(renderedText[k])
        .map((d) => d.toJS() as Manifest | null)
        .filter((m): m is Manifest => m !== null);
    }
  }, 900_000);

  afterAll(async () => {
    await plane?.stop();
  });

  it('passes helm lint with default values and with every option on', async () => {
    for (const extra of [[], ['-f', ALL_OPTIONS]]) {
      const { stdout } = await run(helm, ['lint', CHART, '--strict', '--kube-version', KUBE_VERSION, ...extra]);
      expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('rejects bad values at install time (values.schema.json)', async () => {
    const bad: [string[], RegExp][] = [
      [['--set', 'policy.engine=magic'], /engine/],
      [['--set', 'envoy.httpPort=0'], /httpPort/],
      [['--set', 'execution.namespace=Not_A_Namespace'], /namespace/],
      [['--set', 'policy.engine=remote'], /remote/],
      [['--set', 'telemetry.otlpEndpoint=collector:4317'], /otlpEndpoint/],
      [['--set', 'unknownKey=1'], /unknownKey|additional/],
      // The body rides in one gRPC message to the authz server (8 MiB cap).
      [['--set', 'envoy.maxRequestBytes=16777216'], /maxRequestBytes/],
    ];
    for (const [args, why] of bad) {
      const err = await template(args).then(
        () => undefined,
        (e: { stderr: string }) => e.stderr,
      );
      expect(err, `helm template ${args.join(' ')} should fail`).toBeDefined();
      expect(err).toMatch(/values don't meet the specifications of the schema/);
      expect(err).toMatch(why);
    }
  });

  it('renders what each option asks for', () => {
    const kinds = (k: 'default' | 'all'): string[] => rendered[k].map((m) => `${m.kind}/${m.metadata.name}`);
    expect(kinds('default')).toEqual(expect.arrayContaining(['Deployment/toolgate-envoy', 'Deployment/toolgate-authz', 'Deployment/toolgate-executor', 'Service/toolgate-authz', 'PodDisruptionBudget/toolgate-authz', 'NetworkPolicy/toolgate-tool-calls', 'Namespace/toolgate-exec']));
    expect(kinds('default').some((k) => k.startsWith('HorizontalPodAutoscaler/'))).toBe(false);
    // The execution namespace is bounded whatever the executors ask: a quota and per-container limits.
    for (const k of ['default', 'all'] as const) {
      const quota = rendered[k].find((m) => m.kind === 'ResourceQuota') as { metadata: { namespace: string }; spec: { hard: Record<string, string> } } | undefined;
      expect(quota?.metadata.namespace).toBe(k === 'default' ? 'toolgate-exec' : 'agents-exec');
      expect(Object.keys(quota?.spec.hard ?? {}).sort()).toEqual(['count/jobs.batch', 'limits.cpu', 'limits.memory', 'pods', 'requests.cpu', 'requests.memory', 'secrets']);
      expect(rendered[k].some((m) => m.kind === 'LimitRange' && m.metadata.namespace === quota?.metadata.namespace)).toBe(true);
    }
    expect(kinds('all')).toEqual(expect.arrayContaining(['HorizontalPodAutoscaler/toolgate-envoy', 'Deployment/toolgate-otel-collector', 'NetworkPolicy/toolgate-tool-k8s-get-deployment']));
    // Every pod: non-root, read-only root filesystem, no privilege escalation, all capabilities dropped.
    for (const d of rendered.all.filter((m) => m.kind === 'Deployment')) {
      const spec = (d as unknown as { spec: { template: { spec: { securityContext: Record<string, unknown>; containers: { securityContext: Record<string, unknown> }[] } } } }).spec.template.spec;
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of spec.containers) expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    }
  });

  it('the shared store (input.history): none by default, the URL from a Secret, or the release\'s Redis reachable only from authz and the executor', async () => {
    const configOf = (text: string, component: 'authz' | 'executor'): Record<string, unknown> => {
      const cm = parseAllDocuments(text).map((d) => d.toJS() as Manifest & { data?: Record<string, string> }).find((m) => m?.kind === 'ConfigMap' && m.metadata.name === `toolgate-${component}`);
      return parseYaml(cm?.data?.[`${component}.yaml`] ?? '') as Record<string, unknown>;
    };
    const authzConfig = (text: string): Record<string, unknown> => configOf(text, 'authz');
    expect(authzConfig(renderedText.default).store).toBeUndefined();
    expect(rendered.default.some((m) => m.metadata.name === 'toolgate-redis')).toBe(false);
    expect(authzConfig(renderedText.all).store).toEqual({ redis_url_env: 'TOOLGATE_STORE_REDIS_URL', key_prefix: 'tg-staging:', command_timeout_ms: 150 });
    // The executor ends calls in flight in the same store.
    expect(configOf(renderedText.all, 'executor').store).toEqual(authzConfig(renderedText.all).store);
    expect(renderedText.all.split('- { name: TOOLGATE_STORE_REDIS_URL, valueFrom: { secretKeyRef: { name: "toolgate-redis", key: "url" } } }').length - 1).toBe(2);
    const own = await template(['--set', 'redis.enabled=true', '--set', 'networkPolicy.enabled=true']);
    expect(authzConfig(own).store).toMatchObject({ redis_url: 'redis://toolgate-redis:6379/0' });
    const docs = parseAllDocuments(own).map((d) => d.toJS() as Manifest & { spec?: Record<string, unknown> }).filter((m) => m?.metadata?.name === 'toolgate-redis');
    expect(docs.map((m) => m.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'Service']);
    const from = JSON.stringify(docs.find((m) => m.kind === 'NetworkPolicy')?.spec);
    expect(from).toContain('"app.kubernetes.io/component":"authz"');
    expect(from).toContain('"app.kubernetes.io/component":"executor"');
  });

  it("gives each executor replica's Jobs that replica's own address, and labels them with its name", () => {
    for (const k of ['default', 'all'] as const) {
      const find = (kind: string, name: string): Record<string, any> => rendered[k].find((m) => m.kind === kind && m.metadata.name === name) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const container = find('Deployment', `${RELEASE}-executor`).spec.template.spec.containers[0];
      expect(container.env, k).toEqual(
        expect.arrayContaining([
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ]),
      );
      // The rendered config names the pod's address; the executor expands it at start, and refuses to start without it.
      const text = find('ConfigMap', `${RELEASE}-executor`).data['executor.yaml'] as string;
      expect(text).toContain('callback_url: "http://${POD_IP}:9292"');
      const runner = parseExecutorConfig(text, '/etc/toolgate/executor.yaml', { POD_IP: '10.244.1.17', TOOLGATE_STORE_REDIS_URL: 'redis://:pw@redis:6379/0' }).runner;
      // Results go to the Service: any replica stores them with the Job, so they land when the starter is gone.
      expect(runner).toMatchObject({ kind: 'kubernetes', callback_url: 'http://10.244.1.17:9292', result_url: `http://${RELEASE}-executor.${RELEASE_NS}.svc.cluster.local:9292` });
      expect(() => parseExecutorConfig(text, '/etc/toolgate/executor.yaml', {})).toThrow(/POD_IP is not set/);
      // NetworkPolicies select pods (and the pod's port), so Jobs may reach an executor pod at its own address.
      const execNs = runner.kind === 'kubernetes' ? runner.namespace : '';
      const toolPeer = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': execNs } }, podSelector: { matchLabels: { 'app.kubernetes.io/component': 'tool-call' } } };
      expect(find('NetworkPolicy', `${RELEASE}-executor`).spec.ingress).toContainEqual({ from: expect.arrayContaining([toolPeer]), ports: [{ port: 9292 }] });
      const egress = find('NetworkPolicy', 'toolgate-tool-calls').spec.egress as { to: { podSelector?: { matchLabels: Record<string, string> } }[]; ports: unknown[] }[];
      expect(egress.find((e) => e.to.some((p) => p.podSelector?.matchLabels['app.kubernetes.io/component'] === 'executor'))?.ports).toEqual([{ port: 9292 }]);
    }
  });

  it("opens a tool's declared network only to its calls that no obligation restricted to network none", () => {
    const np = rendered.all.find((m) => m.kind === 'NetworkPolicy' && m.metadata.name === 'toolgate-tool-k8s-get-deployment') as unknown as { spec: { podSelector: { matchLabels: Record<string, string>; matchExpressions: unknown[] } } };
    expect(np.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/component': 'tool-call', 'toolgate.dev/tool': 'k8s-get-deployment' });
    expect(np.spec.podSelector.matchExpressions).toEqual([{ key: 'toolgate.dev/network', operator: 'NotIn', values: ['none'] }]);
  });

  it('spreads checks over every authz pod, over mTLS only Envoy holds the client side of, and keeps keyed audit trails per pod', () => {
    for (const k of ['default', 'all'] as const) {
      const find = (kind: string, name: string): Record<string, any> => rendered[k].find((m) => m.kind === kind && m.metadata.name === name) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      // A headless Service: Envoy's STRICT_DNS cluster resolves it to one host per pod.
      expect(find('Service', `${RELEASE}-authz-pods`).spec).toMatchObject({ clusterIP: 'None' });
      const envoyYaml = find('ConfigMap', `${RELEASE}-envoy`).data['envoy.yaml'] as string;
      expect(envoyYaml).toContain(`address: ${RELEASE}-authz-pods.`);
      expect(envoyYaml).toContain('grpc_health_check: { service_name: envoy.service.auth.v3.Authorization }');
      expect(envoyYaml).toContain('filename: /etc/envoy/internal-tls/envoy.crt');
      // The authz server's config asks for Envoy's certificate and parses as the server will read it.
      const authz = parseAuthzConfig(find('ConfigMap', `${RELEASE}-authz`).data['authz.yaml'] as string, '/etc/toolgate/authz.yaml', { TOOLGATE_STORE_REDIS_URL: 'redis://:pw@redis:6379/0' });
      expect(authz.grpc.tls).toEqual({ cert_file: '/etc/toolgate/internal-tls/authz.crt', key_file: '/etc/toolgate/internal-tls/authz.key', client_ca_file: '/etc/toolgate/internal-tls/ca.crt', client_names: ['envoy.toolgate.internal'] });
      expect(authz.grpc.drain_delay_ms).toBe(k === 'default' ? 4000 : 5000);
      expect(authz.audit?.key_file).toBe('/etc/toolgate/secrets/audit/key');
      // Only Envoy mounts Envoy's key; only authz mounts the server's.
      const items = (name: string): string[] => (find('Deployment', name).spec.template.spec.volumes as { name: string; secret?: { items: { key: string }[] } }[]).find((v) => v.name === 'internal-tls')?.secret?.items.map((i) => i.key) ?? [];
      expect(items(`${RELEASE}-envoy`)).toEqual(['ca.crt', 'envoy.crt', 'envoy.key']);
      expect(items(`${RELEASE}-authz`)).toEqual(['ca.crt', 'authz.crt', 'authz.key']);
      expect(items(`${RELEASE}-executor`)).toEqual([]);
      const secret = find('Secret', `${RELEASE}-internal-tls`);
      expect(Object.keys(secret.data).sort()).toEqual(['authz.crt', 'authz.key', 'ca.crt', 'envoy.crt', 'envoy.key']);
      expect(find('Secret', `${RELEASE}-audit-key`)).toBeDefined();
      const auditVolume = (find('Deployment', `${RELEASE}-executor`).spec.template.spec.volumes as { name: string }[]).find((v) => v.name === 'audit');
      expect(auditVolume).toEqual(k === 'default' ? { name: 'audit', emptyDir: {} } : { name: 'audit', persistentVolumeClaim: { claimName: 'toolgate-audit' } });
      // Approvals (every option): the authz pods serve the approvers' page on their own port, Envoy routes
      // /approvals/ there with the approvers' JWT provider, and the authz pod reads Envoy's JWKS.
      if (k === 'all') {
        expect(authz.approvals).toMatchObject({ address: '0.0.0.0:9466', public_url: 'https://gateway.example.com/approvals/', ttl_seconds: 600, approvers: { group: 'platform-approvers', group_claim: 'roles', jwks_file: '/etc/toolgate/jwks/jwks.json', issuer: 'https://issuer.example.com', audiences: ['toolgate-approvals'] } });
        expect(envoyYaml).toContain('prefix: "/approvals/"');
        expect(envoyYaml).toContain(`socket_address: { address: ${RELEASE}-authz.`);
        expect(envoyYaml).toContain('audiences: ["toolgate-approvals"]');
        expect((find('Service', `${RELEASE}-authz`).spec.ports as { name: string }[]).map((p) => p.name)).toContain('approvals');
        expect((find('Deployment', `${RELEASE}-authz`).spec.template.spec.volumes as { name: string }[]).map((v) => v.name)).toContain('jwks');
      } else {
        expect(authz.approvals).toBeUndefined();
        expect(envoyYaml).not.toContain('/approvals/');
      }
    }
  });

  it('renders manifests that pass offline schema validation (kubernetes-validate, strict)', async () => {
    const validator = await ensureKubernetesValidate();
    for (const k of ['default', 'all'] as const) {
      const file = join(dir, `${k}.yaml`);
      await writeFile(file, renderedText[k]);
      const { stdout } = await run(validator, ['--strict', '--kubernetes-version', '1.34.0', file], { maxBuffer: 16 * 1024 * 1024 }).catch((e: { stdout: string; stderr: string }) => {
        throw new Error(`kubernetes-validate rejected the ${k} render:\n${e.stdout}${e.stderr}`);
      });
      expect(stdout).not.toMatch(/ERROR/);
    }
  });

  it('renders manifests the real kube-apiserver accepts in a server-side dry-run apply', async () => {
    const api = KubernetesObjectApi.makeApiClient(admin);
    for (const k of ['default', 'all'] as const) {
      const objects = rendered[k];
      // Namespaces exist for real (a dry run creates nothing for the namespaced objects to land in).
      const namespaces = new Set([RELEASE_NS, ...objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name), ...objects.map((o) => o.metadata.namespace).filter((n): n is string => !!n)]);
      for (const ns of namespaces) await createNamespace(admin, ns);
      const problems: string[] = [];
      for (const obj of objects) {
        const withNs = obj.kind === 'Namespace' || obj.metadata.namespace ? obj : { ...obj, metadata: { ...obj.metadata, namespace: RELEASE_NS } };
        try {
          await api.patch(withNs, undefined, 'All', 'toolgate-test', true, PatchStrategy.ServerSideApply);
        } catch (err) {
          problems.push(`${obj.kind}/${obj.metadata.name}: ${(err as { body?: string; message?: string }).body ?? (err as Error).message}`);
        }
      }
      expect(problems, `${k} render`).toEqual([]);
    }
  });

  it('grants least privilege: the executor manages Jobs in the execution namespace only; each tool exactly its verbs', async () => {
    const objects = rendered.default;
    for (const ns of [RELEASE_NS, 'toolgate-exec', 'staging', 'production']) await createNamespace(admin, ns);
    const rbac = objects.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind ?? ''));
    const api = KubernetesObjectApi.makeApiClient(admin);
    for (const o of rbac) {
      const obj = o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: RELEASE_NS } };
      await api.patch(obj, undefined, undefined, 'toolgate-test', true, PatchStrategy.ServerSideApply);
    }
    const authz = admin.makeApiClient(AuthorizationV1Api);
    const can = async (sa: string, saNs: string, attrs: { verb: string; resource: string; group?: string; namespace: string; subresource?: string }): Promise<boolean> => {
      const res = await authz.createSubjectAccessReview({
        body: { spec: { user: `system:serviceaccount:${saNs}:${sa}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${saNs}`], resourceAttributes: { ...attrs, group: attrs.group ?? '' } } },
      });
      return res.status?.allowed === true;
    };

    const executor = { sa: `${RELEASE}-executor`, ns: RELEASE_NS };
    expect(await can(executor.sa, executor.ns, { verb: 'create', resource: 'jobs', group: 'batch', namespace: 'toolgate-exec' })).toBe(true);
    expect(await can(executor.sa, executor.ns, { verb: 'watch', resource: 'jobs', group: 'batch', namespace: 'toolgate-exec' })).toBe(true);
    expect(await can(executor.sa, executor.ns, { verb: 'delete', resource: 'jobs', group: 'batch', namespace: 'toolgate-exec' })).toBe(true);
    expect(await can(executor.sa, executor.ns, { verb: 'get', resource: 'pods', namespace: 'toolgate-exec' })).toBe(true);
    // Each call's Secret, and its result's: the executor creates them and reads one by name (a result another
    // replica stored), never lists them.
    expect(await can(executor.sa, executor.ns, { verb: 'create', resource: 'secrets', namespace: 'toolgate-exec' })).toBe(true);
    expect(await can(executor.sa, executor.ns, { verb: 'get', resource: 'secrets', namespace: 'toolgate-exec' })).toBe(true);
    for (const ns of [RELEASE_NS, 'staging', 'production', 'default', 'kube-system']) {
      expect(await can(executor.sa, executor.ns, { verb: 'create', resource: 'jobs', group: 'batch', namespace: ns }), `jobs in ${ns}`).toBe(false);
      expect(await can(executor.sa, executor.ns, { verb: 'create', resource: 'secrets', namespace: ns }), `secrets in ${ns}`).toBe(false);
    }
    for (const [verb, resource, group] of [['list', 'secrets', ''], ['watch', 'secrets', ''], ['update', 'secrets', ''], ['patch', 'secrets', ''], ['delete', 'secrets', ''], ['create', 'pods', ''], ['delete', 'pods', ''], ['update', 'jobs', 'batch'], ['create', 'rolebindings', 'rbac.authorization.k8s.io'], ['get', 'deployments', 'apps']] as const) {
      expect(await can(executor.sa, executor.ns, { verb, resource, group, namespace: 'toolgate-exec' }), `${verb} ${resource}`).toBe(false);
    }

    // Each tool: every declared verb allowed in the target namespace, nothing else, nowhere else.
    const catalog = await loadToolCatalogFile(join(CHART, 'files', 'tools.yaml'));
    const universe: { group: string; resource: string; subresource?: string }[] = [];
    const verbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
    for (const tool of catalog.all()) for (const rule of tool.execution.rbac) for (const g of rule.apiGroups) for (const r of rule.resources) universe.push(splitResource(g, r));
    universe.push({ group: '', resource: 'secrets' }, { group: 'batch', resource: 'jobs' });
    for (const tool of catalog.all()) {
      const sa = tool.execution.service_account;
      if (!sa) continue;
      const declared = new Set(tool.execution.rbac.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)))));
      for (const target of universe) {
        for (const verb of verbs) {
          const key = `${target.group}|${target.resource}${target.subresource ? `/${target.subresource}` : ''}|${verb}`;
          const attrs = { verb, resource: target.resource, group: target.group, ...(target.subresource ? { subresource: target.subresource } : {}) };
          expect(await can(sa, 'toolgate-exec', { ...attrs, namespace: 'staging' }), `${tool.name}: ${key} in staging`).toBe(declared.has(key));
          if (declared.has(key)) expect(await can(sa, 'toolgate-exec', { ...attrs, namespace: 'production' }), `${tool.name}: ${key} in production`).toBe(false);
        }
      }
    }

    // The chart and the executor's own RBAC generator agree on every tool's rules.
    const generated = toolRbac(catalog, { executionNamespace: 'toolgate-exec', targetNamespaces: ['staging'], executorServiceAccount: 'x', defaultToolServiceAccount: 'toolgate-tool-default' });
    const rules = (list: Manifest[]): Record<string, unknown> => Object.fromEntries(list.filter((o) => o.kind === 'Role').map((o) => [o.metadata.name, (o as { rules?: unknown }).rules]));
    expect(rules(rbac.filter((o) => o.metadata.namespace === 'staging'))).toEqual(rules(generated as Manifest[]));
  });

  it('renders an Envoy config that passes envoy --mode validate (default and every option)', async () => {
    const creds = await ensureDevCredentials(join(dir, 'creds'));
    const internal = await ensureInternalCredentials(join(dir, 'creds', 'internal'));
    for (const k of ['default', 'all'] as const) {
      const cm = rendered[k].find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${RELEASE}-envoy`) as { data: Record<string, string> } | undefined;
      const config = cm?.data['envoy.yaml'];
      expect(config).toBeDefined();
      if (k === 'all') {
        expect(config).toContain('envoy.tracers.opentelemetry');
        expect(config).toContain('toolgate-otel-collector.toolgate-system.svc');
        expect(config).toContain('prefix: /mcp');
        // Upstream MCP answers are checked from their headers (a JSON body on demand), streams never buffered.
        expect(config).toContain('processing_mode: { request_header_mode: SKIP, response_header_mode: SEND, request_body_mode: NONE, response_body_mode: NONE');
        expect(config).toContain('allow_mode_override: true');
      } else {
        expect(config).not.toContain('otel_collector');
      }
      // Envoy reads 32 KiB of an agent connection ahead of its filters; checked bodies get maxRequestBytes (2 MiB).
      expect(config?.match(/per_connection_buffer_limit_bytes: (\d+)/g)).toEqual(['per_connection_buffer_limit_bytes: 32768', 'per_connection_buffer_limit_bytes: 32768']);
      expect(config).toContain('request_body_buffer_limit: 2097152');
      // The pod's mounted Secret and ConfigMap paths, pointed at local files for the validation run.
      const local = (config as string)
        .replace('/etc/envoy/tls/tls.crt', creds.serverCertPath)
        .replace('/etc/envoy/tls/tls.key', creds.serverKeyPath)
        .replace('/etc/envoy/tls/ca.crt', creds.caCertPath)
        .replaceAll('/etc/envoy/jwks/jwks.json', creds.jwksPath)
        .replace('/etc/envoy/internal-tls/envoy.crt', internal.envoyCertPath)
        .replace('/etc/envoy/internal-tls/envoy.key', internal.envoyKeyPath)
        .replace('/etc/envoy/internal-tls/ca.crt', internal.caCertPath)
        // The pod logs to its stdout; the test runner's stdout may be a socket Envoy cannot open.
        .replace('path: /dev/stdout', `path: ${join(dir, 'access.log')}`);
      const file = join(dir, `envoy-${k}.yaml`);
      await writeFile(file, local);
      await validateEnvoyConfig(file);
    }
  });
});

async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

/** "deployments/scale" in the catalog is resource deployments, subresource scale, to the authorizer. */
function splitResource(group: string, resource: string): { group: string; resource: string; subresource?: string } {
  const [r, sub] = resource.split('/');
  return sub ? { group, resource: r as string, subresource: sub } : { group, resource: r as string };
}
