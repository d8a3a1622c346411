import { ensureEnvoy, ensureHelm, ensureOpa, ensureOpaEnvoyPlugin } from './install.js';
import { ensureOtelCollector } from './otelcol.js';
import { ensureBubblewrap } from './bubblewrap.js';
import { ensureH2load } from './h2load.js';
import { ensureKubeBinaries } from './kube.js';
import { ensureKubernetesValidate } from './kubernetes-validate.js';
import { ensureKubeNodeTools } from './kube-node.js';
import { ensureRedisServer } from './redis.js';
import { ensureChromium } from './chromium.js';

/** `npm run tools [envoy|opa|opa-envoy-plugin ...]`: installs the named components (all by default). */
const installers: Record<string, () => Promise<string>> = {
  envoy: ensureEnvoy,
  opa: ensureOpa,
  'opa-envoy-plugin': ensureOpaEnvoyPlugin,
  bubblewrap: ensureBubblewrap,
  h2load: ensureH2load,
  otelcol: ensureOtelCollector,
  helm: ensureHelm,
  'kubernetes-validate': ensureKubernetesValidate,
  redis: ensureRedisServer,
  kube: async () => Object.values(await ensureKubeBinaries()).join(' '),
  // Not in the default set: a real node (tests, bench) installs Debian packages as root.
  'kube-node': async () => Object.values(await ensureKubeNodeTools()).join(' '),
  // Not in the default set either: a browser for the approval page's test (issue 18), a large Debian package.
  chromium: ensureChromium,
};
const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(installers).filter((n) => n !== 'kube-node' && n !== 'chromium')) {
  const install = installers[name];
  if (!install) {
    process.stderr.write(`unknown tool "${name}"; known: ${Object.keys(installers).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`${name}: ${await install()}\n`);
}
