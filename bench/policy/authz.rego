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

# toolgate also asks, before it lets an MCP tools/call go on, whether the agent's tools/list would show the
# tool (input.mcp.method == "tools/list", the tool in input.tool_call, no request attributes): a tool that is
# not listed cannot be called. The plugin never asks this, so this rule is toolgate's only; without it every
# MCP call in the benchmark was refused (HTTP 200 with a JSON-RPC error) and measured a refusal.
allow if {
	input.mcp.method == "tools/list"
	data.authorized_agents[input.agent_id]
	input.tool_call.tool == "echo"
}
