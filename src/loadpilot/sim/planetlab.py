"""Per-VM CPU traces: the PlanetLab day folders (one file per VM, one integer percent per line) and CSV files.

Files are taken in byte order of their names (CloudSim takes them in whatever order the file system lists them,
which differs between machines; the reference figures use name order). Names may contain spaces.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loadpilot.errors import PermanentError


class TraceError(PermanentError):
    """A trace folder or file cannot be read as per-VM utilisation."""


@dataclass(frozen=True)
class Traces:
    """CPU utilisation of V VMs at T points `interval_s` apart, as fractions 0..1 of each VM's CPU."""

    names: list[str]
    utilisation: NDArray[np.float64]
    interval_s: float

    @property
    def vms(self) -> int:
        """Number of VMs."""
        return len(self.names)

    @property
    def points(self) -> int:
        """Number of samples per VM."""
        return int(self.utilisation.shape[1])


def load_planetlab(folder: Path, interval_s: float = 300.0) -> Traces:
    """Read a PlanetLab day folder: every regular file is one VM, one integer percent per line."""
    if not folder.is_dir():
        raise TraceError(f"{folder}: not a folder of PlanetLab traces")
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: os.fsencode(p.name))
    if not files:
        raise TraceError(f"{folder}: no trace files")
    rows: list[list[float]] = []
    for path in files:
        try:
            values = [int(line) / 100.0 for line in path.read_text().split("\n") if line.strip()]
        except ValueError as e:
            raise TraceError(f"{path}: not one integer percent per line ({e})") from e
        rows.append(values)
    width = min(len(r) for r in rows)
    if width == 0:
        raise TraceError(f"{folder}: an empty trace file")
    data = np.array([r[:width] for r in rows], dtype=np.float64)
    return Traces([p.name for p in files], data, interval_s)


def load_csv(path: Path) -> Traces:
    """Read a wide CSV: a `time` column (seconds) then one column per VM, utilisation as 0..1 or as percent."""
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            table = [[float(x) for x in row] for row in reader if row]
    except (OSError, StopIteration, ValueError) as e:
        raise TraceError(f"{path}: not a CSV of time and per-VM utilisation ({e})") from e
    if len(header) < 2 or header[0].strip().lower() != "time" or len(table) < 2:
        raise TraceError(f"{path}: needs a header 'time,<vm>,...' and at least two rows")
    values = np.array(table, dtype=np.float64)
    times = values[:, 0]
    steps = np.diff(times)
    if (steps <= 0).any():
        raise TraceError(f"{path}: times must increase")
    data = values[:, 1:].T
    if data.max(initial=0.0) > 1.0:
        data = data / 100.0
    return Traces([h.strip() for h in header[1:]], np.clip(data, 0.0, None), float(np.median(steps)))


def load_traces(path: Path) -> Traces:
    """A PlanetLab folder or a CSV file, by what `path` is."""
    if path.is_dir():
        return load_planetlab(path)
    if path.is_file():
        return load_csv(path)
    raise TraceError(f"{path}: no such trace folder or file")
