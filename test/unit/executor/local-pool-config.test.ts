import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadToolCatalogFile } from '../../../src/catalog/tool-catalog.js';
import { ExecutorConfigError, parseExecutorConfig } from '../../../src/executor/config.js';
import { sandboxPoolSettings } from '../../../src/executor/local-pool-config.js';
import { REPO_ROOT } from '../../../src/shared/repo-paths.js';

const config = (runner: string): string => `
catalog: /etc/toolgate/catalog/tools.yaml
decision_key_file: /etc/toolgate/secrets/decision/key
runner: ${runner}
`;
const parse = (runner: string): ReturnType<typeof parseExecutorConfig> => parseExecutorConfig(config(runner), '/etc/toolgate/executor.yaml', {});

describe("the local runner's sandbox pool in the executor config", () => {
  it('is off unless configured', () => {
    expect(parse('{ kind: local }').runner).toEqual({ kind: 'local' });
  });

  it('fills in the defaults of what is left out', () => {
    expect(parse('{ kind: local, pool: { size: 1 } }').runner).toEqual({ kind: 'local', pool: { size: 1, tools: {}, max_total: 16 } });
    expect(parse('{ kind: local, pool: { tools: { echo: 2 } } }').runner).toEqual({ kind: 'local', pool: { size: 0, tools: { echo: 2 }, max_total: 16 } });
  });

  it('refuses sizes out of bounds and unknown keys, naming them', () => {
    expect(() => parse('{ kind: local, pool: { size: -1 } }')).toThrow(ExecutorConfigError);
    expect(() => parse('{ kind: local, pool: { size: 17 } }')).toThrow(/size/);
    expect(() => parse('{ kind: local, pool: { tools: { echo: 1.5 } } }')).toThrow(ExecutorConfigError);
    expect(() => parse('{ kind: local, pool: { max_total: 0 } }')).toThrow(/max_total/);
    expect(() => parse('{ kind: local, pool: { sise: 1 } }')).toThrow(/additional/);
  });

  it('refuses a per-tool size for a tool the catalog does not have (a typo would leave that tool cold)', async () => {
    const catalog = await loadToolCatalogFile(join(REPO_ROOT, 'src', 'catalog', 'tools.yaml'));
    expect(sandboxPoolSettings({ size: 1, tools: { echo: 2 }, max_total: 8 }, catalog)).toEqual({ size: 1, tools: { echo: 2 }, maxTotal: 8 });
    expect(() => sandboxPoolSettings({ size: 0, tools: { ecko: 2 }, max_total: 8 }, catalog)).toThrow(/not in the catalog: ecko/);
  });
});
