"""Host power models: SPECpower tables interpolated linearly between the 10 % load points (CloudSim's model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class PowerTable:
    """Watts drawn at 0, 10, ..., 100 % CPU load; linear in between."""

    name: str
    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.watts) != 11:
            raise ValueError(
                f"power table {self.name!r} needs 11 values (0..100 % in steps of 10), got {len(self.watts)}"
            )

    def power(self, utilisation: float) -> float:
        """Watts at one utilisation (clamped to 0..1), interpolated as CloudSim's PowerModelSpecPower does."""
        u = min(max(utilisation, 0.0), 1.0)
        low = int(u * 10)
        if low >= 10:
            return self.watts[10]
        high = low if u * 10 == low else low + 1
        delta = (self.watts[high] - self.watts[low]) / 10
        return self.watts[low] + delta * (u - low / 10) * 100


# HP ProLiant ML110 G4 (Xeon 3040) and G5 (Xeon 3075), as in CloudSim's power examples.
HP_G4 = PowerTable("hp-ml110-g4", (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117))
HP_G5 = PowerTable("hp-ml110-g5", (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135))


def table_matrix(tables: list[PowerTable]) -> Floats:
    """The tables as one (T, 11) array, so many hosts' power can be computed at once."""
    return np.array([t.watts for t in tables], dtype=np.float64)


class PowerCurves:
    """Watts of many hosts at once, from the tables of a (T, 11) `watts` array (see `table_matrix`), prepared once
    for many lookups (a placement prices every host it tries): flattened, with each segment's (high - low) / 10
    beside them, as PowerTable.power interpolates."""

    def __init__(self, watts: Floats) -> None:
        self.width = watts.shape[1]
        self.base: Floats = watts.ravel().copy()
        self.step: Floats = (np.diff(watts, axis=1, append=watts[:, -1:]) / 10).ravel()

    def power(self, kind: NDArray[np.intp], utilisation: Floats) -> Floats:
        """Watts of hosts with these table rows at these utilisations (clamped to 0..1)."""
        return self.power_from(kind * self.width, np.minimum(np.maximum(utilisation, 0.0), 1.0))

    def power_from(self, starts: NDArray[np.intp], u: Floats) -> Floats:
        """Watts at utilisations `u` already within 0..1, each host's table starting at `starts` (its row times
        `width`) in the flattened tables."""
        low = np.minimum((u * 10).astype(np.intp), 9)
        at = starts + low
        return np.asarray(self.base.take(at) + self.step.take(at) * (u - low / 10) * 100, dtype=np.float64)
