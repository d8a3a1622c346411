package examples.budget_test

import rego.v1

import data.examples.budget

call(tool, spent) := {"tool_call": {"tool": tool}, "history": {"agent": {"budget": {"spent": spent, "window": "1h"}}}}

test_within_budget if {
	not budget.refused with input as call("echo", 99)
	budget.cost == 1 with input as call("echo", 0)
}

test_over_budget_is_refused_with_numbers if {
	budget.refused with input as call("echo", 100)
	budget.reason == "the hourly budget of 100 units would be exceeded (spent 100 in the last hour, this call costs 1); wait for earlier calls to age out or ask for a larger budget" with input as call("echo", 100)
}

test_costs_and_limit_from_data if {
	budget.cost == 10 with input as call("k8s_scale_deployment", 0) with data.budget.costs as {"k8s_scale_deployment": 10}
	budget.refused with input as call("k8s_scale_deployment", 15) with data.budget as {"units_per_hour": 20, "costs": {"k8s_scale_deployment": 10}}
	not budget.refused with input as call("k8s_scale_deployment", 10) with data.budget as {"units_per_hour": 20, "costs": {"k8s_scale_deployment": 10}}
}
