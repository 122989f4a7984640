"""The window arithmetic that turns a pool's readings into the PoolView a policy decides on (pure)."""

from __future__ import annotations

from collections import deque

import pytest

from loadpilot.act.pool.probe import WorkerMetrics
from loadpilot.control.snapshot import Snapshot, WorkerReading, base_of, view_of

BOUNDS = (0.05, 0.1, 0.5, float("inf"))


def metrics(requests: float, in_flight: float = 0.0, seconds_each: float = 0.04) -> WorkerMetrics:
    """Counters of a worker that served `requests` requests, each in the first bucket (<= 50 ms)."""
    return WorkerMetrics(requests, in_flight, requests * seconds_each, requests, tuple((b, requests) for b in BOUNDS))


def reading(key: str, m: WorkerMetrics | None, cpu: float | None = 0.5, state: str = "ready") -> WorkerReading:
    return WorkerReading(key=key, state=state, started_at=0.0, cpu=cpu, metrics=m)


def snap(at: float, *workers: WorkerReading, desired: int | None = None) -> Snapshot:
    ready = sum(1 for w in workers if w.ready)
    return Snapshot(at, desired if desired is not None else len(workers), len(workers), ready, 0, workers)


def test_rate_and_in_flight_over_the_window() -> None:
    views = [
        snap(0.0, reading("a:1", metrics(100)), reading("b:2", metrics(50))),
        snap(5.0, reading("a:1", metrics(300)), reading("b:2", metrics(250))),
        snap(10.0, reading("a:1", metrics(500, in_flight=3)), reading("b:2", metrics(450, in_flight=1))),
    ]
    view = view_of("web", views, 1, 8, window_s=10.0)
    assert view.rps == pytest.approx(80.0)  # (950 - 150) / 10 s
    assert view.window_s == pytest.approx(10.0)
    # Little's law: 80 req/s x 40 ms = 3.2 in the pool on average, less than the 4 in flight right now.
    assert view.in_flight == pytest.approx(4.0)
    assert view.latency_p95 is not None and view.latency_p95 <= 0.05
    assert view.cpu == pytest.approx(0.5)
    assert (view.desired, view.size, view.ready, view.min, view.max) == (2, 2, 2, 1, 8)


def test_a_shorter_window_starts_from_a_later_reading() -> None:
    views = deque(  # as the observer keeps them
        [
            snap(0.0, reading("a:1", metrics(0))),
            snap(5.0, reading("a:1", metrics(100))),
            snap(10.0, reading("a:1", metrics(600))),
        ]
    )
    assert base_of(views, 5.0) is views[1]
    assert view_of("web", views, 1, 8, window_s=5.0).rps == pytest.approx(100.0)
    assert view_of("web", views, 1, 8, window_s=10.0).rps == pytest.approx(60.0)


def test_a_restarted_worker_counts_from_zero_and_a_new_one_too() -> None:
    views = [
        snap(0.0, reading("a:1", metrics(1000))),
        # a:1 restarted as a:7 (new pid, counters from zero); b:3 started inside the window
        snap(10.0, reading("a:7", metrics(200)), reading("b:3", metrics(100))),
    ]
    view = view_of("web", views, 1, 8, window_s=10.0)
    assert view.rps == pytest.approx(30.0)


def test_counters_that_went_backwards_mean_a_new_process() -> None:
    views = [snap(0.0, reading("a:1", metrics(1000))), snap(10.0, reading("a:1", metrics(50)))]
    assert view_of("web", views, 1, 8, window_s=10.0).rps == pytest.approx(5.0)


def test_one_reading_gives_the_gauges_only() -> None:
    view = view_of("web", [snap(3.0, reading("a:1", metrics(10, in_flight=2)))], 1, 4, window_s=10.0)
    assert view.rps is None and view.latency_p95 is None
    assert view.in_flight == 2.0
    assert view.window_s == 0.0 and view.observed_at == 3.0


def test_unscraped_workers_and_starting_ones_are_left_out() -> None:
    views = [
        snap(0.0, reading("a:1", metrics(0)), reading("b:2", None, cpu=None, state="starting")),
        snap(10.0, reading("a:1", metrics(100)), reading("b:2", None, cpu=0.9, state="starting")),
    ]
    view = view_of("web", views, 1, 4, window_s=10.0, desired=3)
    assert view.rps == pytest.approx(10.0)
    assert view.cpu == pytest.approx(0.5)  # the starting worker's CPU is not the pool's load
    assert (view.desired, view.size, view.ready) == (3, 2, 1)
    assert view.scale_in_progress
