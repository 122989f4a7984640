"""Scaling a pool of workers: policies recommend a size, the framework arbitrates and guards.

A controller calls `decide_scale(view, settings, state, now)` every tick with the pool's latest metrics; it
evaluates every `settings.interval_s` and answers a `Decision` (with a `ScaleTo` when the size should change) and
the state to pass next time. The simulator calls the very same function with a simulated clock.
"""

from loadpilot.decide.scaling.autoscaler import ScalingState, decide_scale, evaluation_due
from loadpilot.decide.scaling.policies import POLICIES
from loadpilot.decide.scaling.recommendation import Recommendation

__all__ = ["POLICIES", "Recommendation", "ScalingState", "decide_scale", "evaluation_due"]
