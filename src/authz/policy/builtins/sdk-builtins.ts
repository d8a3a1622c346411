import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OPA_WASM_SDK_DIR } from '../opa-wasm-sdk.js';
import type { BuiltinTable } from './builtin.js';
import type { Value } from './json-values.js';

/*
 * The builtins @open-policy-agent/opa-wasm itself implements (sprintf, json.is_valid, regex.split, yaml.*).
 * The engine builds its own import object (for exact numbers, sets and OPA's error rules), so it takes these
 * from the SDK's files to keep the behaviour policies already had; the package does not export them.
 */
type SdkFunction = (...args: unknown[]) => unknown;

const sdk = createRequire(import.meta.url)(join(OPA_WASM_SDK_DIR, 'builtins', 'index.js')) as Record<string, SdkFunction>;

export const sdkBuiltins: BuiltinTable = Object.fromEntries(
  Object.entries(sdk).map(([name, fn]) => [name, (args: Value[]) => fn(...args) as Value | undefined]),
);
