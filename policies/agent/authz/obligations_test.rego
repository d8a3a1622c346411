package agent.authz_test

import rego.v1

import data.agent.authz

untrusted := ["scraper-bot"]

invoke(agent) := {"agent_id": agent, "action": "invoke", "resource": "echo", "namespace": "default", "tool_call": {"protocol": "rest", "tool": "echo", "arguments": {"message": "hi"}}}

test_untrusted_agent_allowed_without_network if {
	authz.allow with input as invoke("scraper-bot") with data.authorized_agents as ["ops-bot", "scraper-bot"] with data.untrusted_agents as untrusted
	authz.obligations == {"network": "none"} with input as invoke("scraper-bot") with data.authorized_agents as ["ops-bot", "scraper-bot"] with data.untrusted_agents as untrusted
}

test_trusted_agent_has_no_obligations if {
	authz.allow with input as invoke("ops-bot") with data.authorized_agents as ["ops-bot", "scraper-bot"] with data.untrusted_agents as untrusted
	authz.obligations == {} with input as invoke("ops-bot") with data.authorized_agents as ["ops-bot", "scraper-bot"] with data.untrusted_agents as untrusted
}

test_no_untrusted_list_means_no_obligations if {
	authz.obligations == {} with input as invoke("scraper-bot") with data.authorized_agents as ["scraper-bot"]
}
