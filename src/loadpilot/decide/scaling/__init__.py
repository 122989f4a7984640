"""Scaling a pool of workers: policies recommend a size, the framework arbitrates and guards.

A controller calls `decide_scale(view, settings, state, now, policies)` every tick with the pool's latest metrics
(`policies`: the recommend function of each name the settings use, found once through the
`loadpilot.scaling_policies` entry points); it evaluates every `settings.interval_s` and answers a `Decision` (with a
`ScaleTo` when the size should change) and the state to pass next time. The simulator calls the very same function
with a simulated clock.
"""

from loadpilot.decide.scaling.autoscaler import ScalingState, decide_scale, evaluation_due, policy_names
from loadpilot.decide.scaling.recommendation import Policy, Recommendation

__all__ = ["Policy", "Recommendation", "ScalingState", "decide_scale", "evaluation_due", "policy_names"]
