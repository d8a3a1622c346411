package agent.authz

# Obligations: limits an allow comes with, which the execution must apply (docs/security-teams.md). They may
# only tighten the tool's catalog entry; toolgate refuses a call whose obligations would widen it.
#
# Untrusted agents (data.untrusted_agents) may still run what the rules above allow them, but never with
# network: their sandbox or Job gets no network at all, whatever the tool's catalog entry declares. A tool
# that needs the network (the k8s_* tools reach the Kubernetes API) then fails for them instead of acting.
#
# A partial object: other files can add other limits (timeout_seconds, memory, cpu) for other conditions.

import rego.v1

obligations["network"] := "none" if input.agent_id in data.untrusted_agents
