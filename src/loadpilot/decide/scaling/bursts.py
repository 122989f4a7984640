"""Burst memory (ours, for target and predictive): a pool a burst overwhelmed keeps the size that burst needed
for `burst_memory_s`, so when the burst comes back the workers are already there.

Bursts recur: a crawler's round, a cron job, a page linked from elsewhere. A reactive policy meets each return a
start-up delay late, and the scale-in stabilisation window only bridges gaps shorter than itself. Here a burst
is a rise of the demand, between two evaluations, to more than 1 + BURST_RISE times the size the policy asked for
at the first of them (at the target per worker); a smaller rise is what the target's headroom is for. Each burst
is remembered with the size it needed (its demand at the target) for `burst_memory_s` from when it was seen; the
policy then asks for no less than the largest remembered size. A burst that comes back is seen again (the size
the policy itself asks for stays low between returns), so a recurring burst keeps its workers; one that stops
coming lets them go `burst_memory_s` after its last return. The cost: the largest burst's size, kept until
`burst_memory_s` after the burst's last return (on a quiet pool whose bursts keep coming back, that can be half
again the worker-seconds of target tracking alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.recommendation import Recommendation, ceil_size, num

# A rise of more than 40 % of the asked size between two evaluations, whatever the metric and target: about the
# headroom a CPU target of 0.7 keeps (43 %), so at that target such a rise overwhelms the pool before a new
# worker can start. At a higher target a smaller rise overwhelms it, but a saturated pool's growing queue is
# counted in its demand, so a real overload still shows as a rise.
BURST_RISE = 0.4


@dataclass(frozen=True, slots=True)
class BurstMemory:
    """The bursts seen within the memory (when, and the size each needed) and the size asked for last time."""

    bursts: tuple[tuple[float, int], ...] = ()
    asked: int | None = None


def remember(
    memory: BurstMemory, demand: float | None, asked: int | None, check: ScalingCheck, now: float
) -> BurstMemory:
    """Fold one evaluation in: a burst if `demand` rose past the last asked size by more than BURST_RISE; forget
    bursts older than the memory; keep `asked` (the policy's own answer now) for the next evaluation."""
    bursts = tuple(b for b in memory.bursts if b[0] > now - check.burst_memory_s)
    if demand is not None and memory.asked is not None:
        needed = demand / check.target
        if needed > memory.asked * (1 + BURST_RISE):
            bursts = (*bursts, (now, ceil_size(needed)))
    return BurstMemory(bursts, memory.asked if asked is None else asked)


def hold(recommendation: Recommendation, memory: BurstMemory, check: ScalingCheck, now: float) -> Recommendation:
    """The recommendation, raised to the largest size a burst within the memory needed."""
    recent = [b for b in memory.bursts if b[0] > now - check.burst_memory_s]
    if not recent:
        return recommendation
    when, size = max(recent, key=lambda b: (b[1], b[0]))
    if size <= recommendation.size:
        return recommendation
    reason = (
        f"{recommendation.reason}; burst memory: a burst {num(now - when)} s ago needed {size} "
        f"(kept for {check.burst_memory_s:.0f} s after a burst) -> {size}"
    )
    return Recommendation(size, reason, recommendation.policy, {**recommendation.inputs, "burst_size": size})
