package agent.authz

import future.keywords.if
import future.keywords.in

default allow := false

# Allow read-only operations in staging namespace
allow if {
    input.action in {"get", "list", "watch"}
    input.namespace == "staging"
    input.agent_id in data.authorized_agents
}

# Allow scale operations, but cap max replicas
allow if {
    input.action == "scale"
    input.resource == "deployment"
    input.desired_replicas <= 10
    input.namespace != "production"
    input.agent_id in data.authorized_agents
}

# Deny anything touching secrets
deny if {
    input.resource == "secret"
}
