import type { PolicyBundle } from '../bundle/bundle.js';

// OPA's wasm keeps string constants NUL-terminated in one table: the field name is "history" then NUL,
// not preceded by a character of a word or a path (the module also carries source file paths, which may
// contain the word, e.g. a checkout named "...-history-...").
const NAME = /(?:^|[^A-Za-z0-9_./-])history\0/;

/**
 * Whether a bundle may read `input.history`, decided conservatively from what the embedded engine runs: the
 * wasm module. OPA compiles only what the entrypoints reach, and every field name a rule looks up
 * (`input.history`, `input["history"]`) is a NUL-terminated string constant in the module's data, so a
 * module without that constant cannot read it. A false "yes" (a rule with the word in a string) costs one store round trip
 * per check; a false "no" is impossible short of building the name at run time (concat("", ["hist", "ory"])),
 * which the docs tell policy authors not to do.
 */
export function bundleReadsHistory(bundle: PolicyBundle): boolean {
  if (bundle.wasm.length === 0) return bundle.rego.some((r) => r.source.includes('history'));
  // latin1: one character per byte, so the regular expression sees the module's bytes as they are.
  return bundle.wasm.some((m) => NAME.test(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength).toString('latin1')));
}
