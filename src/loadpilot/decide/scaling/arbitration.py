"""Several checks per pool: the safest recommendation wins (scale out > keep > scale in)."""

from __future__ import annotations

from collections.abc import Sequence

from loadpilot.decide.scaling.recommendation import Recommendation


def arbitrate(current: int, recommendations: Sequence[Recommendation]) -> Recommendation | None:
    """Pick the safest of several recommendations: the largest scale-out if any asks for one, else keeping the
    current size if any asks for that, else the smallest scale-in. None when there is none to pick from."""
    if not recommendations:
        return None
    if len(recommendations) == 1:
        return recommendations[0]
    outs = [r for r in recommendations if r.size > current]
    keeps = [r for r in recommendations if r.size == current]
    if outs:
        best = max(outs, key=lambda r: r.size)
    else:
        best = keeps[0] if keeps else max(recommendations, key=lambda r: r.size)
    others = ", ".join(f"{r.policy or 'check'} -> {r.size}" for r in recommendations if r is not best)
    reason = f"{best.reason} [safest of {len(recommendations)}; others: {others}]"
    return Recommendation(best.size, reason, best.policy, best.inputs)
