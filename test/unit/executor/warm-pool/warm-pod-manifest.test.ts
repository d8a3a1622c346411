import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../../src/catalog/tool-catalog.js';
import { buildJobManifest } from '../../../../src/executor/runners/kubernetes/job-manifest.js';
import { buildWarmPod, buildWarmPodSecret, WARM_POD_MAX_LIFETIME_SECONDS } from '../../../../src/executor/runners/kubernetes/warm-pool/warm-pod-manifest.js';
import { REPO_ROOT } from '../../../../src/shared/repo-paths.js';

describe('a warm pod', () => {
  it("is a call's Job pod (same hardening, account, limits, token) that knows no call, only where to ask for one", async () => {
    const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
    const tool = catalog.get('k8s_get_deployment');
    if (!tool) throw new Error('no k8s_get_deployment');
    const common = { namespace: 'toolgate-exec', image: 'runner:1', command: ['node', 'main.js'], defaultServiceAccount: 'toolgate-tool-default', executor: 'exec-0' };
    const pod = buildWarmPod(tool, 'tg-w0123456789abcdef012', { ...common, claimUrl: 'http://10.0.0.5:9293/internal/v1/warm/tg-w0123456789abcdef012/claim' });
    const job = buildJobManifest(
      { callId: '0123456789abcdef0123', tool, arguments: {}, agentId: 'a', decisionId: 'd', policyRevision: 'r', signal: new AbortController().signal },
      { ...common, ttlSecondsAfterFinished: 30, resultUrl: 'http://x', params: '{}' },
    );
    const jobPod = job.spec?.template.spec;
    expect(pod.spec?.securityContext).toEqual(jobPod?.securityContext);
    expect(pod.spec?.containers[0]?.securityContext).toEqual(jobPod?.containers[0]?.securityContext);
    expect(pod.spec?.containers[0]?.resources).toEqual(jobPod?.containers[0]?.resources);
    expect(pod.spec).toMatchObject({ serviceAccountName: 'toolgate-tool-k8s-get-deployment', automountServiceAccountToken: false, restartPolicy: 'Never', activeDeadlineSeconds: WARM_POD_MAX_LIFETIME_SECONDS });
    expect(pod.spec?.volumes?.find((v) => v.name === 'kube-api-access')).toBeDefined();
    expect(pod.spec?.volumes?.find((v) => v.name === 'call')?.secret?.secretName).toBe('tg-w0123456789abcdef012');
    const env = Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toEqual({ TOOL_NAME: 'k8s_get_deployment', TOOL_CLAIM_URL: 'http://10.0.0.5:9293/internal/v1/warm/tg-w0123456789abcdef012/claim', TOOL_CLAIM_TOKEN_FILE: '/var/run/toolgate/call/token' });
    expect(pod.metadata?.labels).toMatchObject({ 'app.kubernetes.io/component': 'warm-pod', 'toolgate.dev/pool-state': 'idle', 'toolgate.dev/executor': 'exec-0', 'toolgate.dev/tool': 'k8s-get-deployment' });
    const secret = buildWarmPodSecret({ name: 'tg-w0123456789abcdef012', uid: 'u-1', namespace: 'toolgate-exec' }, {}, 'claim-token');
    expect(secret).toMatchObject({ immutable: true, stringData: { token: 'claim-token' } });
    expect(secret.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'tg-w0123456789abcdef012', uid: 'u-1', blockOwnerDeletion: false }]);
    expect(JSON.stringify(pod)).not.toContain('claim-token');
  });
});
