import { describe, expect, it } from 'vitest';
import { encodeCheckResponse } from '../../../src/authz/grpc/check-response-encoder.js';
import type { CheckResponse } from '../../../src/authz/grpc/check-types.js';
import { jsonToStruct } from '../../../src/authz/grpc/struct.js';
import { loadAuthorizationClient, loadServerCodecs } from '../../../src/authz/grpc/proto-loading.js';
import { allowResponse, denyResponse } from '../../../src/authz/response/check-response.js';

// The hand-written encoder must produce what the generic protobuf codec would: both outputs are decoded by
// the generic decoder and compared, for answers of every shape the server gives.
const generic = loadServerCodecs().check;
const decode = (bytes: Buffer): unknown => loadAuthorizationClient().service.Check?.responseDeserialize(bytes);

const decision = {
  allowed: true,
  httpStatus: undefined,
  body: undefined,
  reasons: [],
  headers: { 'x-policy': ['a', 'b'] },
  responseHeadersToAdd: { 'x-seen-by': ['policy'] },
  requestHeadersToRemove: ['x-drop'],
  queryParametersToSet: { dry_run: 'true' },
  queryParametersToRemove: ['debug'],
  dynamicMetadata: {},
};

const cases: Record<string, CheckResponse> = {
  'the usual allow': allowResponse({
    decision: { ...decision, headers: {}, responseHeadersToAdd: {}, requestHeadersToRemove: [], queryParametersToSet: {}, queryParametersToRemove: [] },
    trustedHeaders: { 'x-toolgate-decision-id': 'd-1', 'x-toolgate-agent-id': 'ops-bot', 'x-toolgate-tool': 'echo' },
    decisionId: 'd-1',
    dynamicMetadata: { decision_id: 'd-1', allowed: true, agent_id: 'ops-bot', tool: 'echo', policy_revision: 'r1' },
  }),
  'an allow with every field': allowResponse({ decision, trustedHeaders: { 'x-toolgate-agent-id': 'agent-ü' }, decisionId: 'd-2', dynamicMetadata: { nested: { list: [1, 'two', null, false, { deep: [] }], zero: 0, empty: '', no: false }, n: -1.5e300 } }),
  'a deny with a JSON body': denyResponse({
    httpStatus: 403,
    body: { error: { code: 'policy_denied', message: 'nope — “quoted” ✓', reasons: ['r'.repeat(300), 'short'], decision_id: 'd-3' } },
    headers: { 'www-authenticate': ['Bearer'] },
    decisionId: 'd-3',
    dynamicMetadata: { decision_id: 'd-3', allowed: false, code: 'policy_denied' },
  }),
  'a deny with a text body': denyResponse({ httpStatus: 429, body: 'slow down', decisionId: 'd-4', dynamicMetadata: {} }),
  'lengths that need 2 and 3 varint bytes': {
    status: { code: 7, message: 'm'.repeat(200) },
    denied_response: { status: { code: 413 }, headers: [{ header: { key: 'k', value: 'v'.repeat(20_000) }, append_action: 0 }], body: 'é'.repeat(70_000) },
    dynamic_metadata: jsonToStruct({ big: 'x'.repeat(130), list: Array.from({ length: 100 }, (_, i) => ({ i, s: 'y'.repeat(i) })) }),
  },
  'an empty ok response still selects the oneof': { status: { code: 0 }, ok_response: { headers: [], headers_to_remove: [], response_headers_to_add: [], query_parameters_to_set: [], query_parameters_to_remove: [] } },
};

describe('encodeCheckResponse', () => {
  for (const [name, response] of Object.entries(cases)) {
    it(`matches the generic encoder: ${name}`, () => {
      const fast = encodeCheckResponse(response);
      expect(decode(fast)).toEqual(decode(generic.serialize(response)));
    });
  }

  it('returns bytes of its own: a later answer does not change an earlier one', () => {
    const first = encodeCheckResponse(cases['a deny with a text body'] as CheckResponse);
    const copy = Buffer.from(first);
    encodeCheckResponse(cases['lengths that need 2 and 3 varint bytes'] as CheckResponse);
    expect(first.equals(copy)).toBe(true);
  });
});
