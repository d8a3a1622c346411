import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CatalogError, loadToolCatalogFile, parseToolCatalog } from '../../../src/catalog/tool-catalog.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const minimal = (tool: string): string => `apiVersion: toolgate.dev/v1
kind: ToolCatalog
tools:
${tool}`;

const scale = `  - name: scale
    description: scale it
    action: scale
    resource: deployment
    namespace: { from: /namespace, default: default }
    fields:
      desired_replicas: { from: /replicas }
      label: { from: /meta/label, default: none }
    input_schema:
      type: object
      additionalProperties: false
      required: [replicas]
      properties:
        namespace: { type: string }
        replicas: { type: integer, minimum: 0 }
        meta: { type: object, properties: { label: { type: string } } }
    execution: { timeout_seconds: 5 }
`;

describe('tool catalog', () => {
  it('loads the default catalog', async () => {
    const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
    expect(catalog.names()).toEqual(expect.arrayContaining(['k8s_get_deployment', 'k8s_list_pods', 'k8s_scale_deployment', 'k8s_get_pod_logs', 'k8s_get_secret', 'echo', 'sleep']));
    const k8s = catalog.get('k8s_scale_deployment');
    expect(k8s?.execution.rbac).toEqual([{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'patch'] }]);
    expect(catalog.get('echo')?.execution.network).toBe('none');
  });

  it('derives flat policy fields from constants, pointers and defaults', () => {
    const catalog = parseToolCatalog(minimal(scale), 'test.yaml');
    const tool = catalog.get('scale');
    if (!tool) throw new Error('missing');
    expect(catalog.deriveFields(tool, { replicas: 3, meta: { label: 'x' }, namespace: 'staging' })).toEqual({
      action: 'scale',
      resource: 'deployment',
      namespace: 'staging',
      desired_replicas: 3,
      label: 'x',
    });
    expect(catalog.deriveFields(tool, {})).toEqual({ action: 'scale', resource: 'deployment', namespace: 'default', label: 'none' });
  });

  it('validates arguments with a JSON pointer to the failing field', () => {
    const catalog = parseToolCatalog(minimal(scale), 'test.yaml');
    const tool = catalog.get('scale');
    if (!tool) throw new Error('missing');
    expect(catalog.validateArguments(tool, { replicas: 2 })).toEqual([]);
    expect(catalog.validateArguments(tool, { replicas: -1 }).map((e) => e.path)).toEqual(['/replicas']);
    expect(catalog.validateArguments(tool, { replicas: 1, meta: { label: 5 } }).map((e) => e.path)).toEqual(['/meta/label']);
    expect(catalog.validateArguments(tool, {}).map((e) => e.path)).toEqual(['/replicas']);
  });

  it('stops at the first error, however many the arguments have (bounded work and deny body)', () => {
    const catalog = parseToolCatalog(minimal(scale), 'test.yaml');
    const tool = catalog.get('scale');
    if (!tool) throw new Error('missing');
    const junk = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]));
    expect(catalog.validateArguments(tool, { replicas: -1, ...junk })).toHaveLength(1);
  });

  it('refuses broken catalogs with a message naming the tool and key', () => {
    const bad = (text: string): string => {
      try {
        parseToolCatalog(text, 'cat.yaml');
      } catch (err) {
        if (err instanceof CatalogError) return err.message;
        throw err;
      }
      throw new Error('accepted a broken catalog');
    };
    expect(bad('tools: [')).toMatch(/cat\.yaml: not valid YAML/);
    expect(bad(minimal(scale.replace('name: scale', 'name: Scale-It')))).toMatch(/tool "Scale-It" name: must match pattern/);
    expect(bad(minimal(scale + scale))).toMatch(/tool "scale": duplicate tool name/);
    expect(bad(minimal(scale.replace('label: {', 'agent_id: {')))).toMatch(/fields.agent_id collides with a reserved input key/);
    expect(bad(minimal(scale.replace('minimum: 0', 'minimun: 0')))).toMatch(/tool "scale": input_schema does not compile/);
    expect(bad(minimal(scale.replace('timeout_seconds: 5', 'timeout_seconds: 5, rbac: [{apiGroups: [""], resources: [pods], verbs: [get]}]')))).toMatch(/needs execution.service_account/);
    expect(bad(minimal(scale.replace('execution: { timeout_seconds: 5 }', 'execution: { timeout_seconds: 5, network: internet }')))).toMatch(/tool "scale" execution.network/);
    // Longer than Envoy waits for a call: the agent would get Envoy's timeout while the tool runs on.
    expect(bad(minimal(scale.replace('timeout_seconds: 5', 'timeout_seconds: 301')))).toMatch(/tool "scale" execution.timeout_seconds: must be <= 300/);
  });
});
