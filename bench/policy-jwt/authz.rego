# bench/policy plus what the OPA Envoy plugin's quick start does: an HS256 user token (here in x-user-token,
# next to the agent's JWT that Envoy verifies) checked with io.jwt.decode_verify, its exp/nbf against the
# evaluation's clock, and a claim from it in the decision. Same package and decision as bench/policy.
package bench.authz

import rego.v1

default allow := false

claims := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].jwt_payload

user := payload if {
	[valid, _, payload] := io.jwt.decode_verify(input.attributes.request.http.headers["x-user-token"], {"secret": "secret"})
	valid
}

allow if {
	input.attributes.request.http.method == "POST"
	input.parsed_path == ["v1", "tools", "echo"]
	data.authorized_agents[claims.sub]
	is_string(input.parsed_body.message)
	user.role == "operator"
}
