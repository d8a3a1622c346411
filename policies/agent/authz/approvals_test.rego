package agent.authz_test

import rego.v1

import data.agent.authz

scale(namespace, replicas) := {
	"agent_id": "ops-bot", "action": "scale", "resource": "deployment", "namespace": namespace,
	"name": "api", "desired_replicas": replicas,
}

test_scale_to_zero_in_production_allowed_with_approval if {
	authz.allow with input as scale("production", 0) with data.authorized_agents as agents
	not authz.deny with input as scale("production", 0) with data.authorized_agents as agents
	contains(authz.require_approval.reason, "a person must approve") with input as scale("production", 0) with data.authorized_agents as agents
}

test_other_production_scales_still_refused_without_approval if {
	not authz.allow with input as scale("production", 2) with data.authorized_agents as agents
	not authz.require_approval with input as scale("production", 2) with data.authorized_agents as agents
	"scale is not allowed in namespace production" in authz.reasons with input as scale("production", 2) with data.authorized_agents as agents
}

test_scale_to_zero_outside_production_needs_no_approval if {
	authz.allow with input as scale("staging", 0) with data.authorized_agents as agents
	not authz.require_approval with input as scale("staging", 0) with data.authorized_agents as agents
}

test_unauthorized_agent_gets_no_approval_path if {
	inp := object.union(scale("production", 0), {"agent_id": "intruder"})
	not authz.allow with input as inp with data.authorized_agents as agents
}
