# Loop guard: the same call (this agent, this tool, these arguments) made more than `max_same_calls` times in
# the last minute is refused, with a reason the agent can act on. Counts come from input.history (the calls
# before this one, refused ones included: an agent that keeps retrying stays refused until it pauses).
#
# Use it from the decision package (see docs/security-teams.md, "History"):
#     deny if data.examples.loop_guard.refused
#     reasons contains data.examples.loop_guard.reason if data.examples.loop_guard.refused
package examples.loop_guard

import rego.v1

# How many identical calls a minute are fine; data.loop_guard.max_same_calls_per_minute overrides it.
default max_same_calls := 5

max_same_calls := data.loop_guard.max_same_calls_per_minute

same_calls := input.history.same_arguments["1m"]

refused if same_calls >= max_same_calls

reason := sprintf("the same call was made %d times in the last minute; wait or change the arguments", [same_calls]) if refused
