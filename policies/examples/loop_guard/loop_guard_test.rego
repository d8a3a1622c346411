package examples.loop_guard_test

import rego.v1

import data.examples.loop_guard

history(n) := {"same_arguments": {"1m": n, "1h": n}}

test_first_five_identical_calls_pass if {
	every n in numbers.range(0, 4) {
		not loop_guard.refused with input.history as history(n)
	}
}

test_sixth_identical_call_is_refused_with_an_actionable_reason if {
	loop_guard.refused with input.history as history(5)
	loop_guard.reason == "the same call was made 5 times in the last minute; wait or change the arguments" with input.history as history(5)
}

test_limit_from_data if {
	loop_guard.refused with input.history as history(2) with data.loop_guard.max_same_calls_per_minute as 2
	not loop_guard.refused with input.history as history(1) with data.loop_guard.max_same_calls_per_minute as 2
}

test_no_history_no_opinion if {
	not loop_guard.refused with input as {}
}
