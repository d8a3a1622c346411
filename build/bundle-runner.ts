/**
 * Bundles the tool runner (dist/src/runner/main.js, compiled by tsc) into dist/runner-bundle/: one file for
 * what every call loads, and one chunk each for what only some calls load (a tool's code, the tracer), kept
 * lazy by code splitting. A runner is a process that lives for one call, and Node resolving and reading a
 * few hundred small files of OpenTelemetry and grpc-js was most of a traced runner's start-up
 * (bench/README.md "Runner start-up"). The Kubernetes client stays outside (only the k8s_* tools load it, from
 * node_modules): it is large and its bundling would be one more thing to trust in the Job image.
 *
 * Run by `npm run build` after tsc: `node dist/build/bundle-runner.js`.
 */
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/shared/repo-paths.js';

const RUNNER_BUNDLE_DIR = join(REPO_ROOT, 'dist', 'runner-bundle');

await rm(RUNNER_BUNDLE_DIR, { recursive: true, force: true });
await build({
  entryPoints: [join(REPO_ROOT, 'dist', 'src', 'runner', 'main.js')],
  outdir: RUNNER_BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@kubernetes/client-node'],
  // CommonJS dependencies (grpc-js...) call require(), which an ES module does not have.
  banner: { js: "import { createRequire as __toolgateCreateRequire } from 'node:module'; const require = __toolgateCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
