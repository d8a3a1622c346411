import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { buildCallSecret, buildJobManifest, MAX_SECRET_PARAMS_BYTES, type JobSettings } from '../../../src/executor/runners/kubernetes/job-manifest.js';
import type { ToolInvocation } from '../../../src/executor/runners/runner.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const settings: JobSettings = {
  namespace: 'toolgate-exec',
  image: 'toolgate/runner:test',
  command: ['node', 'runner.js'],
  ttlSecondsAfterFinished: 30,
  resultUrl: 'http://executor/internal/v1/calls/0123456789abcdef0123/result',
  paramsUrl: 'http://executor/internal/v1/calls/0123456789abcdef0123/params',
 
  defaultServiceAccount: 'toolgate-tool-default',
  executor: 'toolgate-executor-0',
  params: '',
};

async function invocation(args: Record<string, unknown>): Promise<ToolInvocation> {
  const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
  const tool = catalog.all().find((t) => t.name === 'echo');
  if (!tool) throw new Error('no echo tool in the default catalog');
  return { callId: '0123456789abcdef0123', tool, arguments: args, agentId: 'ops-bot', decisionId: 'd-1', policyRevision: 'r-1', signal: new AbortController().signal };
}

describe('a call as a Job and its Secret', () => {
  it('keeps the token and the arguments out of the Job: they are in the Secret the pod mounts', async () => {
    const inv = await invocation({ message: 'hello' });
    const s = { ...settings, params: JSON.stringify(inv.arguments) };
    const job = buildJobManifest(inv, s);
    const secret = buildCallSecret(inv, s, 'the-token', { name: job.metadata?.name as string, uid: 'uid-1' });
    expect(JSON.stringify(job)).not.toContain('the-token');
    expect(JSON.stringify(job)).not.toContain('hello');
    const env = Object.fromEntries((job.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ TOOL_RESULT_TOKEN_FILE: '/var/run/toolgate/call/token', TOOL_PARAMS_FILE: '/var/run/toolgate/call/params' });
    expect(job.spec?.template.spec?.volumes).toContainEqual({ name: 'call', secret: { secretName: secret.metadata?.name, defaultMode: 0o444 } });
    expect(secret).toMatchObject({ immutable: true, stringData: { token: 'the-token', params: '{"message":"hello"}' } });
    expect(secret.metadata?.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata?.name, uid: 'uid-1', blockOwnerDeletion: false }]);
    expect(secret.metadata?.labels).toEqual(job.metadata?.labels);
  });

  it('sends arguments too large for the Secret over the channel instead', async () => {
    const inv = await invocation({ message: 'x'.repeat(MAX_SECRET_PARAMS_BYTES) });
    const s = { ...settings, params: JSON.stringify(inv.arguments) };
    const job = buildJobManifest(inv, s);
    const env = Object.fromEntries((job.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env.TOOL_PARAMS_URL).toBe(settings.paramsUrl);
    expect(env.TOOL_PARAMS_FILE).toBeUndefined();
    expect(buildCallSecret(inv, s, 't', { name: 'n', uid: 'u' }).stringData).toEqual({ token: 't' });
  });
});
