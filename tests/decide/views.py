"""Hand-made pool views and settings for the scaling tests."""

from __future__ import annotations

from typing import Any

from loadpilot import plugins
from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling import ScalingState, decide_scale, policy_names
from loadpilot.model import Decision, PoolView


def view(**changes: Any) -> PoolView:
    """A settled pool of 4 ready workers (1..20) at 0.7 CPU, changed as given."""
    fields: dict[str, Any] = {"name": "web", "desired": 4, "size": 4, "ready": 4, "min": 1, "max": 20, "cpu": 0.7}
    fields.update(changes)
    if "desired" in changes and "size" not in changes and "ready" not in changes:
        fields["size"] = fields["ready"] = changes["desired"]
    return PoolView(**fields)


def settings(**changes: Any) -> AutoscaleConfig:
    """Autoscale settings with every guard off unless asked for: target tracking of CPU at 0.7."""
    base: dict[str, Any] = {
        "enabled": True,
        "policy": "target",
        "metric": "cpu",
        "target": 0.7,
        "interval_s": 15.0,
        "max_step_up": 0,
        "max_step_up_pct": 0.0,
        "stabilisation_down_s": 0.0,
        "hold_while_scaling": "off",
    }
    base.update(changes)
    return AutoscaleConfig.model_validate(base)


def decide(
    pool: PoolView, config: AutoscaleConfig, state: ScalingState | None, now: float
) -> tuple[Decision, ScalingState]:
    """decide_scale with the policies `config` names, found through their entry points as a controller finds them."""
    return decide_scale(pool, config, state, now, plugins.load_each(plugins.SCALING_POLICIES, policy_names(config)))
