import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/*
 * @open-policy-agent/opa-wasm through its CommonJS entry: its ES module entry exports only `loadPolicy`, while
 * the engine needs `LoadedPolicy` (to evaluate an instance the engine instantiated with its own host builtins).
 */
const require = createRequire(import.meta.url);
const sdk = require('@open-policy-agent/opa-wasm') as typeof import('@open-policy-agent/opa-wasm');

export const LoadedPolicy = sdk.LoadedPolicy;
export type LoadedPolicy = InstanceType<typeof sdk.LoadedPolicy>;

/** The SDK's source directory, where its own builtins live (see builtins/sdk-builtins.ts). */
export const OPA_WASM_SDK_DIR = dirname(require.resolve('@open-policy-agent/opa-wasm'));
