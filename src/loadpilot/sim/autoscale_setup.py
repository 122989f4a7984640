"""The simulated pool and objective a comparison runs under, and each policy's settings for it.

Our policies' settings follow from the pool, never from a trace. They track the same CPU target as the
baselines. Target tracking sizes from the load itself and decides at every reading, as soon as there is news.
Predictive decides every second reading: its forecast's smoothing weights are set per evaluation for 10 s, and
deciding every 5 s makes the forecast jumpier (measured: 7 % more worker-seconds at a 120 s start-up). Step and
threshold move relative to the size and decide every second reading, so that one odd reading does not move them
alone. Step and threshold wait for
a scale in progress to finish before the next step (they move relative to the size, so they must first see the
effect of their last step); target and predictive only hold scale-in meanwhile. Target and predictive keep a
scale-in stabilisation window of the time it takes to bring a worker back (start-up plus one evaluation) plus
a minute, so a dip that would be over before a worker could be back, or that lasts a minute (web traffic's
minute-to-minute swings), never costs capacity (measured on every WC98 day against twice the recovery time:
the same violation time, 0.5 % less cost with a 120 s start-up, 0.15 % more with 30 s); step and threshold
recommend relative to the current size, where a rolling max would only slow each scale-in step to one per
window, so they use a scale-in cooldown of that recovery time instead (as AWS step scaling does). Target and
predictive remember bursts for `burst_memory_s` (decide/scaling/bursts.py). Predictive looks ahead exactly the
recovery time. HPA and KPA run with their published defaults; static is sized once, for the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling import presets
from loadpilot.sim.pool_model import PoolParams

OURS = ("target", "step", "threshold", "predictive")
BASELINES = ("hpa", "kpa", "static")
POLICY_NAMES = OURS + BASELINES
# Policies that move relative to the current size must see the effect of one step before taking the next;
# those that size from the load itself (target, predictive) may add more while workers are starting.
RELATIVE = ("step", "threshold")
EVERY_READING = ("target",)  # the policies that decide at every reading
REMEMBER_BURSTS = ("target", "predictive")
RIDE_OUT_S = 60.0  # a dip this long does not make target or predictive scale in


@dataclass(frozen=True)
class SimSetup:
    """The pool's parameters, the latency objective, how the pool is observed, and the CPU target."""

    params: PoolParams = field(default_factory=PoolParams)
    slo_s: float = 0.25  # p95 latency objective
    sample_s: float = 5.0  # the live agent's default sampling interval
    step_s: float = 1.0
    target: float = 0.7  # CPU per worker, for every policy that tracks one (KPA's 70 % default)
    demand_window_s: float = 60.0  # demand for the elasticity metrics: the load averaged over this
    min_size: int = 1
    # How long target and predictive keep the size a burst needed after its last return: half an hour, a property
    # of how bursts recur in web traffic (crawler rounds, cron jobs), not of this pool.
    burst_memory_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.slo_s <= self.params.service_s:
            raise ValueError(f"the latency objective ({self.slo_s:g} s) must exceed the service time")
        if self.sample_s < self.step_s or self.step_s <= 0:
            raise ValueError("sample_s must be >= step_s > 0")
        if not 0 < self.target <= 1:
            raise ValueError("target must be within (0, 1]")
        if self.burst_memory_s < 0:
            raise ValueError("burst_memory_s must be >= 0")

    @property
    def per_worker_at_slo(self) -> float:
        """Requests/s one worker takes at the highest utilisation that still meets the objective."""
        return self.params.utilisation_for(self.slo_s) * self.params.capacity

    def interval_for(self, policy: str) -> float:
        """How often one of our policies evaluates: every reading for target tracking, else every second one."""
        return self.sample_s if policy in EVERY_READING else 2 * self.sample_s

    def workers_for(self, rate: float) -> int:
        """The fewest workers that serve `rate` requests/s within the objective (at least min_size)."""
        return max(self.min_size, math.ceil(rate / self.per_worker_at_slo - 1e-9))


def settings_for(name: str, setup: SimSetup, peak_workers: int) -> AutoscaleConfig:
    """The settings a policy runs with in the simulator (ValueError for an unknown name)."""
    if name == "hpa":
        return presets.hpa("cpu", setup.target)
    if name == "kpa":
        return presets.kpa(setup.params.slots)
    if name == "static":
        return presets.static(peak_workers)
    if name not in OURS:
        raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICY_NAMES)})")
    interval_s = setup.interval_for(name)
    recover_s = setup.params.startup_s + interval_s
    relative = name in RELATIVE
    return AutoscaleConfig.model_validate(
        {
            "enabled": True,
            "policy": name,
            "metric": "cpu",
            "target": setup.target,
            "interval_s": interval_s,
            "horizon_s": recover_s,
            "stabilisation_down_s": 0.0 if relative else recover_s + RIDE_OUT_S,
            "cooldown_down_s": recover_s if relative else 0.0,
            "max_step_up": 0,
            "max_step_up_pct": 0.0,
            "hold_while_scaling": "all" if relative else "in",
            "burst_memory_s": setup.burst_memory_s if name in REMEMBER_BURSTS else 0.0,
        }
    )
