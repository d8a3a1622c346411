package agent.authz

# Explanations only: the decision is the seed's `allow` and `deny` (policy.rego). toolgate returns these
# strings to the agent with a refusal, so they say what the agent can change.

import rego.v1

read_actions := {"get", "list", "watch"}

reasons contains msg if {
	input.resource == "secret"
	msg := "resource secret is never reachable by agents"
}

reasons contains msg if {
	not input.agent_id in data.authorized_agents
	msg := sprintf("agent %v is not in authorized_agents", [input.agent_id])
}

reasons contains msg if {
	input.action in read_actions
	input.namespace != "staging"
	msg := sprintf("%v is only allowed in namespace staging (got %v)", [input.action, input.namespace])
}

reasons contains msg if {
	input.action == "scale"
	input.desired_replicas > 10
	msg := sprintf("scale is capped at 10 replicas (asked for %v)", [input.desired_replicas])
}

reasons contains msg if {
	input.action == "scale"
	input.namespace == "production"
	input.desired_replicas != 0
	msg := "scale is not allowed in namespace production"
}

reasons contains msg if {
	input.action == "scale"
	input.resource != "deployment"
	msg := sprintf("scale is only allowed on deployments (got %v)", [input.resource])
}

reasons contains msg if {
	not input.action in read_actions
	not input.action in {"scale", "invoke"}
	msg := sprintf("no rule allows action %v", [input.action])
}

reasons contains msg if {
	input.action == "invoke"
	not input.resource in local_tools
	msg := sprintf("invoke is only allowed for the local tools %v (got %v)", [local_tools, input.resource])
}
