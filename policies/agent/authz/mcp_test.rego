package agent.authz_test

import rego.v1

import data.agent.authz

mcp(method) := {"agent_id": "ops-bot", "mcp": {"method": method, "server": "toolgate"}}

listing(action, resource) := object.union(mcp("tools/list"), {"action": action, "resource": resource, "tool_call": {"protocol": "mcp", "tool": "t", "arguments": {}}})

test_mcp_session_allowed_for_authorized_agents if {
	authz.allow with input as mcp("initialize") with data.authorized_agents as agents
	authz.allow with input as mcp("notifications/initialized") with data.authorized_agents as agents
	authz.allow with input as mcp("GET") with data.authorized_agents as agents
	authz.allow with input as mcp("server/discover") with data.authorized_agents as agents
	not authz.allow with input as object.union(mcp("initialize"), {"agent_id": "intruder"}) with data.authorized_agents as agents
	not authz.allow with input as mcp("resources/read") with data.authorized_agents as agents
}

test_mcp_tools_list_per_tool if {
	authz.allow with input as listing("list", "pod") with data.authorized_agents as agents
	authz.allow with input as listing("scale", "deployment") with data.authorized_agents as agents
	not authz.allow with input as listing("delete", "pod") with data.authorized_agents as agents
	authz.deny with input as listing("get", "secret") with data.authorized_agents as agents
}

test_mcp_tools_call_decided_like_rest if {
	inp := object.union(mcp("tools/call"), {"action": "scale", "resource": "deployment", "namespace": "production", "desired_replicas": 3, "tool_call": {"protocol": "mcp", "tool": "k8s_scale_deployment"}})
	not authz.allow with input as inp with data.authorized_agents as agents
	"scale is not allowed in namespace production" in authz.reasons with input as inp with data.authorized_agents as agents
}
