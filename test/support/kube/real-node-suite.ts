import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { attest, loadAttestationKey } from '../../../src/shared/decision-attestation.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';
import { startStack, type Stack, type StackOptions } from '../../e2e/stack.js';
import { EXEC_NS, startExecutionCluster, type ExecutionCluster } from './execution-cluster.js';

/** A tool entry of the catalog file, as a suite edits it. */
export type CatalogTool = { name: string; execution: Record<string, unknown> } & Record<string, unknown>;

/** A tool that only runs (action invoke, any object as arguments): the runner's test tools. */
export function invokeTool(name: string, execution: Record<string, unknown>): CatalogTool {
  return { name, description: name, action: 'invoke', resource: name, input_schema: { type: 'object' }, execution };
}

export interface RealNodeSuite {
  cluster: ExecutionCluster;
  stack: Stack;
  /** A JWT of the development agent ops-bot, for calls through Envoy. */
  jwt: string;
  decisionKey: Buffer;
  /**
   * Straight to an executor (default: the first), with the headers only the gateway sets and the attestation
   * only the authz server can make (this test holds the shared key): for runner behaviour, not authorization.
   * Each request gets a decision of its own (as from the gateway) unless the test names one.
   */
  direct(tool: string, args: unknown, o?: DirectOptions): Promise<Response>;
  stop(): Promise<void>;
}

export interface DirectOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** The executor's agent port (default: the first executor's). */
  port?: number;
  decisionId?: string;
  /** When the attestation was made (default now): an old one is expired. */
  attestedAtMs?: number;
}

/**
 * The set-up every real-node suite shares: the default catalog edited by the suite (written to a temporary
 * file), the real node with its control plane and RBAC (execution-cluster.ts), and a stack whose executor
 * runs calls on it under `instance`, plus the credentials to call it through Envoy or straight.
 */
export async function startRealNodeSuite(o: { instance: string; editCatalog?: (tools: CatalogTool[]) => void; stack?: Partial<StackOptions> }): Promise<RealNodeSuite> {
  let catalogPath = join(REPO_ROOT, 'src', 'catalog', 'tools.yaml');
  if (o.editCatalog) {
    const doc = parseYaml(await readFile(catalogPath, 'utf8')) as { tools: CatalogTool[] };
    o.editCatalog(doc.tools);
    catalogPath = join(await mkdtemp(join(tmpdir(), 'toolgate-catalog-')), 'catalog.yaml');
    await writeFile(catalogPath, toYaml(doc));
  }
  const cluster = await startExecutionCluster(catalogPath);
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      engine: 'embedded',
      executor: 'kubernetes',
      kube: { kubeconfig: cluster.executorKubeconfig, namespace: EXEC_NS, instance: o.instance, ...cluster.runner },
      catalogPath,
      ...o.stack,
    });
    const s = stack;
    const jwt = await s.jwtFor('ops-bot');
    const decisionKey = await loadAttestationKey(s.creds.decisionKeyPath);
    const direct = (tool: string, args: unknown, d: DirectOptions = {}): Promise<Response> => {
      const body = JSON.stringify(args);
      const decisionId = d.decisionId ?? d.headers?.['x-toolgate-decision-id'] ?? `test-decision-${crypto.randomUUID()}`;
      const attestation = attest(decisionKey, { decisionId, agentId: 'ops-bot', agentMethod: 'jwt', tool, policyRevision: 'test-rev', body: Buffer.from(body) }, { nowMs: d.attestedAtMs ?? Date.now() });
      return fetch(`http://127.0.0.1:${d.port ?? s.executorPort}/v1/tools/${tool}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-toolgate-decision-id': decisionId,
          'x-toolgate-agent-id': 'ops-bot',
          'x-toolgate-agent-auth': 'jwt',
          'x-toolgate-tool': tool,
          'x-toolgate-policy-revision': 'test-rev',
          'x-toolgate-attestation': attestation,
          ...d.headers,
        },
        body,
        ...(d.signal ? { signal: d.signal } : {}),
      });
    };
    return {
      cluster,
      stack: s,
      jwt,
      decisionKey,
      direct,
      stop: async () => {
        await s.stop();
        await cluster.stop();
      },
    };
  } catch (err) {
    await stack?.stop();
    await cluster.stop();
    throw err;
  }
}
