"""Every scaling policy by name: ours (target, step, threshold, predictive) and the baselines (hpa, kpa, static)."""

from __future__ import annotations

from loadpilot.decide.scaling import hpa, kpa, predictive, static, step, target, threshold
from loadpilot.decide.scaling.recommendation import Policy

POLICIES: dict[str, Policy] = {
    "target": target.recommend,
    "step": step.recommend,
    "threshold": threshold.recommend,
    "predictive": predictive.recommend,
    "hpa": hpa.recommend,
    "kpa": kpa.recommend,
    "static": static.recommend,
}
