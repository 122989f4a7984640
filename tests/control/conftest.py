"""A real pool (worker_app processes under a real supervisor), a real SQLite store and controllers whose seats
elect a leader through a real tooz file:// backend: everything the controller touches, for real."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadpilot.act.pool.probe import scrape_metrics
from loadpilot.act.pool.state import PoolState
from loadpilot.config import Config, parse_config
from loadpilot.control.controller import Controller
from loadpilot.control.seat import Seat
from loadpilot.coord import CoordSettings
from loadpilot.store import Store, open_store
from tests.act.pool.conftest import pool_config
from tests.helpers import wait_for

# Target tracking on requests in flight, one per worker; evaluated at every step the tests make (their `now`s are
# at least a second apart); no stabilisation, so a scale-in needs no waiting.
AUTOSCALE: dict[str, Any] = {
    "enabled": True,
    "policy": "target",
    "metric": "in_flight",
    "target": 1.0,
    "interval_s": 1.0,
    "stabilisation_down_s": 0.0,
}


def control_config(tmp_path: Path, **pool_fields: Any) -> Config:
    """One autoscaled pool of worker_app processes (min 1, max 4), the controller's and the leadership's settings."""
    pool = pool_config(**{"autoscale": AUTOSCALE, **pool_fields})
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "pools": [pool.model_dump(mode="json", exclude_none=True)],
            "control": {"tick_s": 1.0, "retry_initial_s": 1.0, "retry_max_s": 4.0},
            "coordination": {"url": f"file://{tmp_path / 'coord'}", "tick_s": 0.2, "member_timeout_s": 10.0},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store in the test's folder."""
    store = open_store(f"sqlite:///{tmp_path / 'loadpilot.db'}")
    yield store
    store.close()


ControllerFactory = Callable[[Config, str], Controller]


@pytest.fixture
def controllers(store: Store) -> Iterator[ControllerFactory]:
    """Make controllers (each with its own seat on the config's backend); all are closed at teardown."""
    made: list[Controller] = []

    def make(config: Config, member: str) -> Controller:
        seat = Seat(CoordSettings(**config.coordination_options()), member, {})
        controller = Controller(config, store, seat, member)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()


def _get(url: str) -> None:
    with suppress(httpx.HTTPError):
        httpx.get(url, timeout=30)


def in_flight(state: PoolState) -> float:
    """Requests in flight in the pool's ready workers right now, as their /metrics say."""
    total = 0.0
    for w in state.workers:
        if w.state == "ready" and w.port:
            m = scrape_metrics("127.0.0.1", w.port, "/metrics", 1.0)
            total += m.in_flight if m is not None else 0.0
    return total


@contextmanager
def held_requests(state: PoolState, per_worker: int, ms: int) -> Iterator[None]:
    """`per_worker` requests of `ms` milliseconds in flight on every ready worker (seen in their metrics)."""
    ports = [w.port for w in state.workers if w.state == "ready" and w.port]
    threads = [
        threading.Thread(target=_get, args=(f"http://127.0.0.1:{port}/slow?ms={ms}",), daemon=True)
        for port in ports
        for _ in range(per_worker)
    ]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: in_flight(state) >= len(threads), timeout=10), "the slow requests did not start"
        yield
    finally:
        for t in threads:
            t.join(timeout=ms / 1000 + 10)
