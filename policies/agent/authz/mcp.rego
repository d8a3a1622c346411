package agent.authz

# MCP: every message of a session is decided here too. A `tools/call` carries the same flat fields as a REST
# call (action, resource, namespace, ...), so the seed's rules decide it unchanged; these rules cover the
# messages around tool calls. An addition next to the seed's rules, which stay as they are.

import rego.v1

# What an authorized agent may always send: open a session, keep it alive, cancel, answer the server, open
# the server's stream (GET), end the session (DELETE), and ask for the tool list (filtered below).
# server/discover is 2026-07-28's initialize (the server's revisions and capabilities, no session).
mcp_session_methods := {
	"initialize", "server/discover", "ping", "tools/list", "response", "GET", "DELETE",
	"notifications/initialized", "notifications/cancelled", "notifications/progress",
	"notifications/roots/list_changed",
}

allow if {
	input.mcp.method in mcp_session_methods
	not input.tool_call
	input.agent_id in data.authorized_agents
}

# tools/list is asked once per tool: input.tool_call names it (no arguments) with the flat fields its catalog
# entry gives without arguments. List a tool when some call of it could be allowed by the rules above.
allow if {
	input.mcp.method == "tools/list"
	input.tool_call.tool
	input.agent_id in data.authorized_agents
	listable
}

listable if input.action in read_actions

listable if {
	input.action == "scale"
	input.resource == "deployment"
}

listable if {
	input.action == "invoke"
	input.resource in local_tools
}
