"""Measuring how well lines are grouped: loghub's labelled samples and grouping accuracy (GA).

Used by the accuracy test and by bench/logsift.py, so that both measure the same thing the same way.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabelledLog:
    """One system's labelled sample: each line's raw text, its Content (the message after the header), its event."""

    system: str
    raw: tuple[str, ...]
    content: tuple[str, ...]
    events: tuple[str, ...]


def load_loghub(folder: Path) -> list[LabelledLog]:
    """The loghub2k systems under `folder` (`<S>/<S>_2k.log` and `<S>/<S>_2k.log_structured.csv`), by name.

    Raises FileNotFoundError naming the folder when it holds no system, so a wrong path is not mistaken for
    "nothing to measure".
    """
    logs = []
    for structured in sorted(folder.glob("*/*_2k.log_structured.csv")):
        system = structured.parent.name
        with structured.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        raw_path = structured.with_name(f"{system}_2k.log")
        raw = raw_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(raw) != len(rows):
            raise ValueError(f"{raw_path} has {len(raw)} lines but {structured.name} has {len(rows)} rows")
        logs.append(
            LabelledLog(
                system,
                tuple(raw),
                tuple(row["Content"] for row in rows),
                tuple(row["EventId"] for row in rows),
            )
        )
    if not logs:
        raise FileNotFoundError(f"no <S>/<S>_2k.log_structured.csv under {folder}: is it the loghub2k folder?")
    return logs


def grouping_accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """The fraction of lines whose predicted group holds exactly the lines of their true group (loghub's GA).

    A line counts as correct only when its whole group is right: splitting or merging a group makes every line
    in it wrong, which is why GA is the usual yardstick for log parsers.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted ones")
    if not truth:
        return 1.0
    true_groups: dict[Hashable, set[int]] = defaultdict(set)
    predicted_groups: dict[Hashable, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[t].add(i)
        predicted_groups[p].add(i)
    correct = sum(
        len(members) for members in predicted_groups.values() if true_groups[truth[next(iter(members))]] == members
    )
    return correct / len(truth)
