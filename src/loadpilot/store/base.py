"""The store interface every backend implements, and the arithmetic they share.

Backends only move rows; aggregates (mean, max, p95) are computed here, once, so that SQLite and PostgreSQL
answer the same question with the same number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from loadpilot.errors import PermanentError
from loadpilot.model import Batch, Event, Resource, Sample, WindowStats


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What storing a batch did: `duplicate` when its id was stored before, and how many samples were new."""

    duplicate: bool
    stored: int
    received: int


class Store(Protocol):
    """A time-series store for samples, resources and events."""

    url: str

    def write_batch(self, batch: Batch) -> WriteResult:
        """Store a batch atomically, once: a known batch id or sample identity is not stored again."""
        ...

    def latest(self, metric: str | None = None, resource_ids: Sequence[str] | None = None) -> list[Sample]:
        """The newest sample of each (resource, metric)."""
        ...

    def series(self, resource_id: str, metric: str, start: float, end: float, limit: int = 10_000) -> list[Sample]:
        """The samples of one resource's metric with start <= timestamp < end, oldest first."""
        ...

    def window_values(
        self, metric: str, start: float, end: float, resource_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float, float]]:
        """(resource_id, timestamp, value) of one metric in [start, end), oldest first."""
        ...

    def buckets(
        self,
        metric: str,
        start: float,
        end: float,
        step_s: float,
        kind: str | None = None,
        resource_ids: Sequence[str] | None = None,
    ) -> list[tuple[str, int, float]]:
        """(resource_id, bucket, mean) of one metric in [start, end), bucket = floor((timestamp - start) / step_s),
        for the resources of one kind and/or the given ids, ordered by resource and bucket.

        One grouped query, so a dashboard's chart of 1,000 hosts costs one pass over the metric's samples in the window.
        """
        ...

    def resources(self, kind: str | None = None, labels: Mapping[str, str] | None = None) -> list[Resource]:
        """The resources seen so far, optionally only those of a kind and carrying all the given labels."""
        ...

    def add_event(self, event: Event) -> int:
        """Record an event; returns its id."""
        ...

    def events(
        self,
        since: float | None = None,
        kind: str | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
        *,
        result: str | None = None,
        subject_prefix: str | None = None,
    ) -> list[Event]:
        """Events, newest first, filtered by time, kind, subject (exact, prefix or substring), result or id."""
        ...

    def delete_before(self, cutoff: float) -> int:
        """Remove samples (and remembered batch ids) older than `cutoff`; returns the samples removed."""
        ...

    def counts(self) -> dict[str, int]:
        """Row counts per table, for status pages and tests."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def stats_of(key: str, metric: str, values: Sequence[float]) -> WindowStats | None:
    """Aggregate values taken oldest first; p95 interpolates linearly (as PostgreSQL's percentile_cont)."""
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    return WindowStats(
        key=key,
        metric=metric,
        count=int(arr.size),
        mean=float(arr.mean()),
        max=float(arr.max()),
        p95=float(np.percentile(arr, 95)),
        latest=float(arr[-1]),
    )


def window_stats(
    store: Store, metric: str, window_s: float, now: float, resource_ids: Sequence[str] | None = None
) -> list[WindowStats]:
    """Per-resource aggregates of a metric over the last `window_s` seconds before `now`."""
    per: dict[str, list[float]] = {}
    for rid, _ts, value in store.window_values(metric, now - window_s, now, resource_ids):
        per.setdefault(rid, []).append(value)
    out = [stats_of(rid, metric, vals) for rid, vals in sorted(per.items())]
    return [s for s in out if s is not None]


def group_stats(
    store: Store, metric: str, window_s: float, now: float, label: str, kind: str | None = None
) -> list[WindowStats]:
    """Aggregates of a metric over the last `window_s` seconds for each value of a label (e.g. per pool).

    Every sample of every member counts once, so a pool's p95 is over all its workers' readings.
    """
    members: dict[str, str] = {}
    for res in store.resources(kind=kind):
        if label in res.labels:
            members[res.id] = res.labels[label]
    if not members:
        return []
    per: dict[str, list[float]] = {}
    for rid, _ts, value in store.window_values(metric, now - window_s, now, list(members)):
        per.setdefault(members[rid], []).append(value)
    out = [stats_of(group, metric, vals) for group, vals in sorted(per.items())]
    return [s for s in out if s is not None]


def check_schema_version(found: str | None, wanted: int, where: str) -> None:
    """Refuse a database written by another version of the layout, before anything is written to it."""
    if found is not None and found != str(wanted):
        raise PermanentError(
            f"store.url: {where} holds loadpilot's store layout version {found}, this version reads {wanted}; "
            "point store.url at a new database (or move the old one away)"
        )


def labels_match(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """True when `labels` has every key of `wanted` with the same value."""
    return not wanted or all(labels.get(k) == v for k, v in wanted.items())


def dump_json(value: Mapping[str, Any]) -> str:
    """Serialise labels or details the same way in every backend."""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
