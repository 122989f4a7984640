"""The baselines' settings as published, so they run through the same framework as our policies.

- hpa: Kubernetes' defaults: 15 s sync, tolerance 0.1, scale-down stabilisation 300 s, scale-up at most
  max(100 %, 4 pods) per period, scale-down at most 100 %, no cooldown, no hold (unready pods are handled by
  the policy itself).
- kpa: Knative's defaults: a 2 s tick, no stabilisation beyond the policy's own windows and panic mode, scale-down
  at most halving per tick (max-scale-down-rate 2) and up by 1000x (inside the policy).
- static: a fixed size, nothing else.
"""

from __future__ import annotations

from loadpilot.config import AutoscaleConfig, ScalingMetric

HPA_SYNC_S = 15.0
HPA_TOLERANCE = 0.1
HPA_DOWNSCALE_STABILISATION_S = 300.0
KPA_TICK_S = 2.0
KPA_TARGET_UTILISATION = 0.7  # container-concurrency-target-percentage


def hpa(metric: ScalingMetric, target: float) -> AutoscaleConfig:
    """Settings that make the framework behave as a default Kubernetes HPA on one metric."""
    return AutoscaleConfig(
        enabled=True,
        policy="hpa",
        metric=metric,
        target=target,
        tolerance=HPA_TOLERANCE,
        interval_s=HPA_SYNC_S,
        stabilisation_down_s=HPA_DOWNSCALE_STABILISATION_S,
        max_step_up=4,
        max_step_up_pct=100.0,
        max_step_down=0,
        max_step_down_pct=100.0,
        cooldown_up_s=0.0,
        cooldown_down_s=0.0,
        hold_while_scaling="off",
    )


def kpa(container_concurrency: float, metric: ScalingMetric = "in_flight") -> AutoscaleConfig:
    """Settings that make the framework behave as a default Knative KPA: target 70 % of the concurrency limit."""
    return AutoscaleConfig(
        enabled=True,
        policy="kpa",
        metric=metric,
        target=KPA_TARGET_UTILISATION * container_concurrency,
        interval_s=KPA_TICK_S,
        stabilisation_down_s=0.0,
        max_step_up=0,
        max_step_up_pct=0.0,
        max_step_down=0,
        max_step_down_pct=0.0,
        cooldown_up_s=0.0,
        cooldown_down_s=0.0,
        hold_while_scaling="off",
    )


def static(size: int) -> AutoscaleConfig:
    """A pool that stays at `size` whatever happens."""
    return AutoscaleConfig(enabled=True, policy="static", size=size, stabilisation_down_s=0.0, hold_while_scaling="off")
