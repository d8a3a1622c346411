package agent.authz

# Scale-to-zero in production needs a person's approval (issue 18). Scaling a production deployment to zero
# takes it offline, so the call is allowed only on condition that an approver approves this exact call
# (agent, tool, arguments, policy revision): toolgate holds it (REST 202, MCP URL elicitation) until then,
# and the agent's retry of exactly that call runs once. Every other production scale stays refused.

import rego.v1

scale_to_zero_in_production if {
	input.action == "scale"
	input.resource == "deployment"
	input.namespace == "production"
	input.desired_replicas == 0
}

allow if {
	scale_to_zero_in_production
	input.agent_id in data.authorized_agents
}

require_approval := {"reason": sprintf("scaling deployment %v in production to zero replicas takes it offline: a person must approve this exact call", [input.name])} if {
	scale_to_zero_in_production
}
