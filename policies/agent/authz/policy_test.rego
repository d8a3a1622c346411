package agent.authz_test

import rego.v1

import data.agent.authz

agents := ["ops-bot"]

call(action, resource, namespace) := {"agent_id": "ops-bot", "action": action, "resource": resource, "namespace": namespace}

test_read_in_staging_allowed if {
	authz.allow with input as call("get", "deployment", "staging") with data.authorized_agents as agents
	count(authz.reasons) == 0 with input as call("get", "deployment", "staging") with data.authorized_agents as agents
}

test_list_and_watch_in_staging_allowed if {
	authz.allow with input as call("list", "pod", "staging") with data.authorized_agents as agents
	authz.allow with input as call("watch", "pod", "staging") with data.authorized_agents as agents
}

test_read_in_production_not_allowed if {
	not authz.allow with input as call("get", "deployment", "production") with data.authorized_agents as agents
	"get is only allowed in namespace staging (got production)" in authz.reasons with input as call("get", "deployment", "production")
		with data.authorized_agents as agents
}

test_scale_to_ten_outside_production_allowed if {
	inp := object.union(call("scale", "deployment", "staging"), {"desired_replicas": 10})
	authz.allow with input as inp with data.authorized_agents as agents
	not authz.deny with input as inp with data.authorized_agents as agents
}

test_scale_to_eleven_not_allowed if {
	inp := object.union(call("scale", "deployment", "staging"), {"desired_replicas": 11})
	not authz.allow with input as inp with data.authorized_agents as agents
	"scale is capped at 10 replicas (asked for 11)" in authz.reasons with input as inp with data.authorized_agents as agents
}

test_scale_in_production_not_allowed if {
	inp := object.union(call("scale", "deployment", "production"), {"desired_replicas": 2})
	not authz.allow with input as inp with data.authorized_agents as agents
	"scale is not allowed in namespace production" in authz.reasons with input as inp with data.authorized_agents as agents
}

test_secret_denied_even_when_allowed if {
	inp := call("get", "secret", "staging")
	authz.allow with input as inp with data.authorized_agents as agents
	authz.deny with input as inp with data.authorized_agents as agents
	"resource secret is never reachable by agents" in authz.reasons with input as inp with data.authorized_agents as agents
}

test_unauthorized_agent_not_allowed if {
	inp := object.union(call("get", "deployment", "staging"), {"agent_id": "intruder"})
	not authz.allow with input as inp with data.authorized_agents as agents
	"agent intruder is not in authorized_agents" in authz.reasons with input as inp with data.authorized_agents as agents
}

test_bundle_data_authorizes_both_identity_forms if {
	"ops-bot" in data.authorized_agents
	"spiffe://toolgate.local/agent/ops-bot" in data.authorized_agents
}

test_local_tools_invocable_by_authorized_agents if {
	authz.allow with input as call("invoke", "echo", "default") with data.authorized_agents as agents
	not authz.allow with input as object.union(call("invoke", "echo", "default"), {"agent_id": "intruder"}) with data.authorized_agents as agents
	not authz.allow with input as call("invoke", "shell", "default") with data.authorized_agents as agents
}
