# The benchmark's policy, written against the OPA Envoy plugin's input so that the same file and data run
# unchanged on the plugin and on toolgate (whose input is a superset). It does what a real tool-call policy
# does: checks the method and route, finds the verified JWT subject among the authorized agents, and looks
# at the parsed tool arguments.
package bench.authz

import rego.v1

default allow := false

claims := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].jwt_payload

allow if {
	input.attributes.request.http.method == "POST"
	input.parsed_path == ["v1", "tools", "echo"]
	data.authorized_agents[claims.sub]
	is_string(input.parsed_body.message)
}

# The same call over MCP (POST /mcp, one JSON-RPC tools/call): the plugin and toolgate both parse the
# JSON-RPC body into input.parsed_body, so this rule runs unchanged on both.
allow if {
	input.attributes.request.http.method == "POST"
	input.parsed_path == ["mcp"]
	data.authorized_agents[claims.sub]
	input.parsed_body.method == "tools/call"
	input.parsed_body.params.name == "echo"
	is_string(input.parsed_body.params.arguments.message)
}
