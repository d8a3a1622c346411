# Budget: each agent may spend `limit` units an hour; a call that would go over is refused with what is spent
# and what it costs. The decision package returns `cost` with an allow, and toolgate adds it to the agent's
# spent budget (input.history.agent.budget.spent, a sliding hour).
#
# Use it from the decision package (see docs/security-teams.md, "History"):
#     deny if data.examples.budget.refused
#     reasons contains data.examples.budget.reason if data.examples.budget.refused
#     cost := data.examples.budget.cost
package examples.budget

import rego.v1

# Units an agent may spend an hour; data.budget.units_per_hour overrides it.
default limit := 100

limit := data.budget.units_per_hour

# What a call costs: data.budget.costs[tool] when listed, else 1.
default cost := 1

cost := data.budget.costs[input.tool_call.tool]

spent := input.history.agent.budget.spent

refused if spent + cost > limit

reason := sprintf("the hourly budget of %v units would be exceeded (spent %v in the last hour, this call costs %v); wait for earlier calls to age out or ask for a larger budget", [limit, spent, cost]) if refused
