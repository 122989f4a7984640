"""Elasticity metrics of the SPEC Research Group, as the BUNGEE benchmark computes them (Herbst et al.:
"BUNGEE: An Elasticity Benchmark for Self-Adaptive IaaS Cloud Environments", SEAMS 2015; "Quantifying Cloud
Performance and Dependability: Taxonomy, Metric Design, and Emerging Challenges", ACM TOMPECS 2018).

Over a run of length T in steps of dt, with demand d_t (the fewest workers that meet the latency objective at
the load of that moment) and supply s_t (the ready workers):
- under-provisioning accuracy  theta_U = 100 / T x sum(max(d_t - s_t, 0) / d_t x dt)   [%]
- over-provisioning accuracy   theta_O = 100 / T x sum(max(s_t - d_t, 0) / d_t x dt)   [%]
- under-provisioning timeshare tau_U   = 100 / T x sum([s_t < d_t] x dt)               [%]
- over-provisioning timeshare  tau_O   = 100 / T x sum([s_t > d_t] x dt)               [%]
- jitter j = (e_s - e_d) / T, with e_s and e_d the number of changes of supply and of demand, here per hour:
  below 0 the supply moves less often than the demand (it lags or smooths), above 0 it oscillates.
All are 0 for a perfect autoscaler. Demand is at least one worker, so the ratios are defined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Elasticity:
    """The five metrics of one run."""

    under_accuracy: float
    over_accuracy: float
    under_timeshare: float
    over_timeshare: float
    jitter_per_hour: float

    def as_dict(self) -> dict[str, float]:
        """The metrics by name, for JSON."""
        return asdict(self)


def demand_workers(rates: FloatArray, per_worker: float, smooth_steps: int = 1) -> FloatArray:
    """The fewest workers that serve `rates` at `per_worker` requests/s each (at least 1), after a centred
    moving average over `smooth_steps` steps: second-to-second noise no autoscaler could follow is not demand."""
    if smooth_steps > 1:
        kernel = np.ones(smooth_steps) / smooth_steps
        weight = np.convolve(np.ones(len(rates)), kernel, mode="same")
        rates = np.convolve(rates, kernel, mode="same") / weight
    return np.maximum(1.0, np.ceil(rates / per_worker - 1e-9))


def elasticity(demand: FloatArray, supply: FloatArray, dt: float) -> Elasticity:
    """The SPEC RG elasticity metrics of a supply curve against a demand curve sampled every `dt` seconds."""
    if len(demand) != len(supply) or len(demand) == 0:
        raise ValueError("demand and supply must be non-empty and of the same length")
    d = np.maximum(np.asarray(demand, dtype=np.float64), 1.0)
    s = np.asarray(supply, dtype=np.float64)
    total = len(d) * dt
    under = np.maximum(d - s, 0.0)
    over = np.maximum(s - d, 0.0)
    changes_s = int(np.count_nonzero(np.diff(s)))
    changes_d = int(np.count_nonzero(np.diff(d)))
    return Elasticity(
        under_accuracy=float(100.0 * np.sum(under / d) * dt / total),
        over_accuracy=float(100.0 * np.sum(over / d) * dt / total),
        under_timeshare=float(100.0 * np.count_nonzero(s < d) * dt / total),
        over_timeshare=float(100.0 * np.count_nonzero(s > d) * dt / total),
        jitter_per_hour=(changes_s - changes_d) / (total / 3600.0),
    )
