import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { executorInstance, toLabelValue } from '../../../src/executor/runners/kubernetes/executor-instance.js';
import { buildCallSecret, buildJobManifest, EXECUTOR_LABEL } from '../../../src/executor/runners/kubernetes/job-manifest.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe('the executor instance a Job belongs to', () => {
  it("is the pod's name, else the hostname", () => {
    expect(executorInstance({ POD_NAME: 'toolgate-executor-5d8c7b9f4-x2x7q' }, () => 'ignored')).toBe('toolgate-executor-5d8c7b9f4-x2x7q');
    expect(executorInstance({}, () => 'build-host')).toBe('build-host');
    expect(executorInstance({ POD_NAME: '' }, () => 'build-host')).toBe('build-host');
  });

  it('is always a valid label value, and long names stay distinct', () => {
    const long = 'x'.repeat(70);
    const samples = ['my_host.example.com', 'Host Name!', '-edge-', '___', `${long}-a`, `${long}-b`, 'é'.repeat(80)];
    for (const s of samples) {
      const v = toLabelValue(s);
      expect(v.length, s).toBeLessThanOrEqual(63);
      expect(v, s).toMatch(LABEL_VALUE);
      expect(v, s).not.toBe('');
    }
    expect(toLabelValue('my_host.example.com')).toBe('my_host.example.com');
    expect(toLabelValue(`${long}-a`)).not.toBe(toLabelValue(`${long}-b`));
  });

  it('labels the Job, its pod and its Secret', async () => {
    const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
    const tool = catalog.all().find((t) => t.name === 'echo');
    if (!tool) throw new Error('no echo tool in the default catalog');
    const inv = { callId: '0123456789abcdef0123', tool, arguments: {}, agentId: 'a', decisionId: 'd', policyRevision: 'r', signal: new AbortController().signal };
    const s = { namespace: 'ns', image: 'i', command: ['c'], ttlSecondsAfterFinished: 1, resultUrl: 'http://x/r', defaultServiceAccount: 'sa', executor: 'executor-0', params: '{}' };
    const job = buildJobManifest(inv, s);
    expect(job.metadata?.labels?.[EXECUTOR_LABEL]).toBe('executor-0');
    expect(job.spec?.template.metadata?.labels?.[EXECUTOR_LABEL]).toBe('executor-0');
    expect(buildCallSecret(inv, s, 't', { name: 'n', uid: 'u' }).metadata?.labels?.[EXECUTOR_LABEL]).toBe('executor-0');
  });
});
