package agent.authz

# The tools that need no cluster (the one-machine default's echo and sleep run in a local sandbox with no
# network): any authorized agent may invoke them. An addition next to the seed's rules, which stay as they are.

import rego.v1

local_tools := {"echo", "sleep"}

allow if {
	input.action == "invoke"
	input.resource in local_tools
	input.agent_id in data.authorized_agents
}
