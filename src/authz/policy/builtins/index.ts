import type { BuiltinTable } from './builtin.js';
import { cryptoBuiltins } from './crypto.js';
import { encodingBuiltins } from './encoding.js';
import { jsonSchemaBuiltins } from './json-schema.js';
import { jwtBuiltins } from './jwt.js';
import { netBuiltins } from './net.js';
import { sdkBuiltins } from './sdk-builtins.js';
import { semverBuiltins } from './semver.js';
import { templateBuiltins } from './strings-template.js';
import { timeBuiltins } from './time.js';
import { unitsBuiltins } from './units.js';
import { uuidBuiltins } from './uuid.js';
import { x509Builtins, X509_SET_AWARE } from './x509.js';

/** Every builtin the embedded engine provides to a policy compiled to WebAssembly (beyond those compiled in). */
export const HOST_BUILTINS: Readonly<BuiltinTable> = Object.freeze({
  ...sdkBuiltins,
  ...encodingBuiltins,
  ...cryptoBuiltins,
  ...jwtBuiltins,
  ...timeBuiltins,
  ...semverBuiltins,
  ...unitsBuiltins,
  ...uuidBuiltins,
  ...netBuiltins,
  ...jsonSchemaBuiltins,
  ...x509Builtins,
  ...templateBuiltins,
});

const NOT_YET =
  'not implemented yet: a general helper outside the families policies written for the OPA Envoy plugin rely on (JWT, crypto, time, semver, units, uuid, net, JSON Schema, encodings); use the remote engine';

/** Why a builtin OPA's wasm target leaves to the host is not provided; a bundle needing one is refused at load. */
export const UNSUPPORTED_REASONS: Readonly<Record<string, string>> = Object.freeze({
  'http.send': 'a decision that calls the network belongs to the remote engine (OPA), which has its caching, timeouts and TLS settings; the embedded engine decides from the request and the bundle alone',
  'net.lookup_ip_addr': 'a DNS lookup is network I/O from inside a decision; use the remote engine',
  'opa.runtime': 'the embedded engine is not an OPA runtime (no config, env or version to report)',
  'providers.aws.sign_req': 'signs requests for http.send, which the embedded engine does not provide',
  'graphql.is_valid': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'graphql.parse': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'graphql.parse_and_verify': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'graphql.parse_query': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'graphql.parse_schema': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'graphql.schema_is_valid': 'needs a GraphQL parser with gqlparser semantics; not implemented in the embedded engine',
  'rego.parse_module': 'needs the Rego parser (OPA itself)',
  'trace': 'evaluation tracing is an OPA runtime feature',
  ...Object.fromEntries(
    [
      'cast_array', 'cast_boolean', 'cast_null', 'cast_object', 'cast_set', 'cast_string', 'glob.quote_meta', 'graph.reachable_paths', 'indexof_n',
      'json.marshal_with_options', 'json.patch', 'numbers.range_step', 'object.subset', 'print', 'regex.find_n', 'regex.globs_match', 'regex.replace',
      'regex.template_match', 'rego.metadata.chain', 'rego.metadata.rule', 'strings.any_prefix_match', 'strings.any_suffix_match', 'strings.count',
      'strings.split_n', 'uri.is_valid', 'uri.parse',
    ].map((name) => [name, NOT_YET]),
  ),
});

export function reasonUnsupported(name: string): string {
  return UNSUPPORTED_REASONS[name] ?? 'unknown to the embedded engine (a builtin newer than this release, or a custom one); use the remote engine';
}

export { BuiltinError, NotImplementedError, type BuiltinImpl, type EvaluationContext } from './builtin.js';
import { SET_AWARE as NET_SET_AWARE } from './net.js';

/** Builtins whose arguments are read in Rego syntax (sets stay sets). */
export const SET_AWARE: ReadonlySet<string> = new Set([...NET_SET_AWARE, ...X509_SET_AWARE]);
