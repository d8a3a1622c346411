import type { PolicyBundle } from '../bundle/bundle.js';

const NAME = Buffer.from('history');

/**
 * Whether a bundle may read `input.history`, decided conservatively from what the embedded engine runs: the
 * wasm module. OPA compiles only what the entrypoints reach, and every field name a rule looks up
 * (`input.history`, `input["history"]`) is a string constant in the module's data, so a module without the
 * bytes "history" cannot read it. A false "yes" (a rule with the word in a string) costs one store round trip
 * per check; a false "no" is impossible short of building the name at run time (concat("", ["hist", "ory"])),
 * which the docs tell policy authors not to do.
 */
export function bundleReadsHistory(bundle: PolicyBundle): boolean {
  if (bundle.wasm.length === 0) return bundle.rego.some((r) => r.source.includes('history'));
  return bundle.wasm.some((m) => Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength).includes(NAME));
}
