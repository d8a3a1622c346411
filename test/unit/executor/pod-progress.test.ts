import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeTermination, PodProgress } from '../../../src/executor/runners/kubernetes/pod-progress.js';
import type { RunEvent } from '../../../src/executor/runners/runner.js';

function progressOver(pods: V1Pod[]): { progress: PodProgress; events: RunEvent[] } {
  const events: RunEvent[] = [];
  let i = 0;
  const core = { listNamespacedPod: async () => ({ items: [pods[Math.min(i++, pods.length - 1)] as V1Pod] }) };
  return { progress: new PodProgress(core as never, 'ns', 'job-1', (e) => events.push(e)), events };
}

describe("a Job's pod, followed", () => {
  it('reports scheduled and container started once each, in order', async () => {
    const scheduled: V1Pod = { metadata: { name: 'p' }, status: { conditions: [{ type: 'PodScheduled', status: 'True' }] } };
    const running: V1Pod = { ...scheduled, status: { ...scheduled.status, containerStatuses: [{ name: 't', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] } };
    const { progress, events } = progressOver([scheduled, running, running]);
    for (let n = 0; n < 3; n++) expect(await progress.check()).toBeUndefined();
    expect(events.map((e) => e.kind)).toEqual(['pod.scheduled', 'container.started']);
  });

  it('turns a missing image into an error at once, naming the image', async () => {
    const pod: V1Pod = { metadata: { name: 'p' }, status: { containerStatuses: [{ name: 't', image: 'localhost/runner:gone', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } }] } };
    const { progress } = progressOver([pod]);
    expect(await progress.check()).toMatch(/image localhost\/runner:gone is not available on the node \(ImagePullBackOff\)/);
  });

  it('remembers why a pod was never scheduled', async () => {
    const pod: V1Pod = { metadata: { name: 'p' }, status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' }] } };
    const { progress } = progressOver([pod]);
    await progress.check();
    expect(progress.neverScheduled).toMatch(/Insufficient cpu/);
  });

  it('names an OOM kill with the limit', () => {
    expect(describeTermination({ exitCode: 137, reason: 'OOMKilled' }, '64Mi')).toBe('the tool was OOM-killed: it exceeded its memory limit of 64Mi (exit 137)');
    expect(describeTermination({ exitCode: 3, reason: 'Error', message: ' boom\n' }, '64Mi')).toBe('boom');
  });
});
