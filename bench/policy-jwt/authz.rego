# bench/policy plus what the OPA Envoy plugin's quick start does: an HS256 user token checked with
# io.jwt.decode_verify, its exp/nbf against the evaluation's clock, and a claim from it in the decision. The
# token travels in the query (?token=) so that the load generator can send a different one on every request
# (it sends one set of headers). Same package and decision as bench/policy.
package bench.authz

import rego.v1

default allow := false

claims := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].jwt_payload

user := payload if {
	[valid, _, payload] := io.jwt.decode_verify(input.parsed_query.token[0], {"secret": "secret"})
	valid
}

allow if {
	input.attributes.request.http.method == "POST"
	input.parsed_path == ["v1", "tools", "echo"]
	data.authorized_agents[claims.sub]
	is_string(input.parsed_body.message)
	user.role == "operator"
}
