"""The arithmetic behind the dashboard's JSON: aligned time buckets, compact numbers, and latest readings.

Charts get aligned arrays: `t` holds each bucket's start time and every metric array holds a number or null per
bucket, so the page draws them without joining anything. Numbers are rounded to a few significant digits: the
overview of 1,000 hosts must stay small on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loadpilot.model import Event, Resource, Sample
from loadpilot.store import Store

Series = list[float | None]
MIN_STEP_S = 5
MAX_POINTS = 60


@dataclass(frozen=True)
class Window:
    """The buckets a chart shows: `count` steps of `step_s` seconds, the last one holding `now`.

    Bucket edges are multiples of the step, so two pages loaded a few seconds apart show the same buckets.
    """

    start: int
    step_s: int
    count: int

    @classmethod
    def ending_at(cls, now: float, window_s: int, sample_interval_s: float = 0.0) -> Window:
        """At most ~60 buckets covering the last `window_s` seconds before `now`, each at least one sampling
        interval long (a shorter bucket would hold some resources' readings and not others')."""
        step = max(MIN_STEP_S, math.ceil(sample_interval_s), math.ceil(window_s / MAX_POINTS))
        count = math.ceil(window_s / step)
        end = (math.floor(now / step) + 1) * step
        return cls(end - count * step, step, count)

    @property
    def end(self) -> int:
        """Where the last bucket ends (just after now)."""
        return self.start + self.count * self.step_s

    def times(self) -> list[int]:
        """Each bucket's start time."""
        return [self.start + i * self.step_s for i in range(self.count)]


def sig(value: float | None, digits: int = 4) -> float | None:
    """A number rounded to `digits` significant digits (None stays None): what a chart or a table can show."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def sig_all(values: Iterable[float | None]) -> Series:
    """`sig` of every value of a series."""
    return [sig(v) for v in values]


def per_resource(
    store: Store, metric: str, window: Window, kind: str | None = None, ids: Sequence[str] | None = None
) -> dict[str, Series]:
    """The mean of `metric` per bucket, one series per resource of `kind` (or of `ids`)."""
    out: dict[str, Series] = {}
    for rid, bucket, mean in store.buckets(metric, window.start, window.end, window.step_s, kind, ids):
        if 0 <= bucket < window.count:
            out.setdefault(rid, [None] * window.count)[bucket] = mean
    return out


def combine(rows: Iterable[Series], how: Callable[[list[float]], float], count: int, carry: bool = False) -> Series:
    """Several series into one, bucket by bucket (`how` of the values present; null where none is).

    carry: a row missing one bucket keeps its previous value there, for totals: a worker whose reading falls in
    the next bucket (jitter), or has not arrived yet in the newest one, would otherwise dent the sum.
    """
    columns: list[list[float]] = [[] for _ in range(count)]
    for row in rows:
        for i, value in enumerate(row):
            if value is None and carry and i > 0:
                value = row[i - 1]
            if value is not None:
                columns[i].append(value)
    return [how(col) if col else None for col in columns]


def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list."""
    return sum(values) / len(values)


def scaled(series: Series, factor: float) -> Series:
    """Every value of a series times `factor`."""
    return [None if v is None else v * factor for v in series]


def latest_by_resource(samples: Iterable[Sample]) -> dict[str, dict[str, Sample]]:
    """Newest samples as {resource: {metric: sample}}."""
    out: dict[str, dict[str, Sample]] = {}
    for s in samples:
        out.setdefault(s.resource_id, {})[s.metric] = s
    return out


def value_of(latest: dict[str, dict[str, Sample]], rid: str, metric: str) -> float | None:
    """The newest value of one resource's metric, or None."""
    sample = latest.get(rid, {}).get(metric)
    return None if sample is None else sample.value


def last_seen(latest: dict[str, dict[str, Sample]], rid: str) -> float | None:
    """When a resource last reported anything."""
    times = [s.timestamp for s in latest.get(rid, {}).values()]
    return max(times) if times else None


def name_of(resource: Resource) -> str:
    """A host's name as other resources' `host` label gives it (the collector's host name, which is its id)."""
    return resource.labels.get("host") or resource.id


def event_json(event: Event) -> dict[str, Any]:
    """An event as GET /api/v1/events shows it."""
    return {
        "id": event.id or 0,
        "time": event.time,
        "kind": event.kind,
        "subject": event.subject,
        "reason": event.reason,
        "result": event.result,
        "details": event.details,
    }


def newest_events(batches: Iterable[list[Event]], limit: int) -> list[dict[str, Any]]:
    """The `limit` newest of several queries' events, each once."""
    unique = {e.id: e for batch in batches for e in batch}
    return [event_json(e) for e in sorted(unique.values(), key=lambda e: e.id or 0, reverse=True)[:limit]]
