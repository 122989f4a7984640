"""Prometheus as the controller's metrics source: queries answered by a real Prometheus scraping a test exporter,
and a real controller scaling a real pool on a query's value."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadpilot.config import AutoscaleConfig, Config, PoolConfig, ScalingCheck, parse_config
from loadpilot.control.controller import Controller
from loadpilot.control.prometheus import PrometheusSource, QueryUnavailable, expand, pool_queries
from loadpilot.control.seat import Seat
from loadpilot.coord import CoordSettings
from loadpilot.errors import TemporaryError
from loadpilot.model import PoolView, ScaleTo
from loadpilot.sim.autoscale import simulate
from loadpilot.sim.autoscale_setup import SimSetup
from loadpilot.store import Store, open_store
from tests.act.pool.conftest import RunningPool, pool_config
from tests.control.conftest import AUTOSCALE
from tests.decide.views import decide
from tests.helpers import free_port
from tests.observability.conftest import Exporter
from tests.observability.prom import Prometheus, running_prometheus

LOAD = 'loadpilot_test_load{pool="{pool}"}'  # {pool} is the pool's name; the label matcher's braces stay


@pytest.fixture
def prometheus(tmp_path: Path, exporter: Exporter) -> Iterator[Prometheus]:
    """A real Prometheus scraping the test exporter every second."""
    with running_prometheus(tmp_path, {"exporter": [exporter.target]}) as running:
        yield running


def seen(prometheus: Prometheus, pool: str, value: float | None) -> None:
    """Wait until Prometheus has scraped the exporter's gauge for `pool` at `value` (None: gone)."""
    expected = {} if value is None else {"exporter": value}
    prometheus.wait_value(f'loadpilot_test_load{{pool="{pool}"}}', expected)


def test_a_query_answers_one_number_or_none(prometheus: Prometheus, exporter: Exporter) -> None:
    exporter.load.labels("web").set(3.0)
    seen(prometheus, "web", 3.0)
    source = PrometheusSource(prometheus.url, timeout_s=2.0)
    try:
        assert source.query(expand(LOAD, "web")) == 3.0
        assert source.query("scalar(vector(2.5))") == 2.5  # a scalar
        assert source.query("vector(1) * 4") == 4.0
        assert source.query(expand(LOAD, "nope")) is None  # no data: the policy abstains
        assert source.query("vector(0/0)") is None  # NaN is no data either
    finally:
        source.close()


def test_query_errors_are_temporary_and_name_the_query(prometheus: Prometheus, exporter: Exporter) -> None:
    exporter.load.labels("web").set(1.0)
    exporter.load.labels("api").set(2.0)
    seen(prometheus, "api", 2.0)
    source = PrometheusSource(prometheus.url)
    try:
        with pytest.raises(QueryUnavailable, match=r"query 'loadpilot_test_load': 2 series .*aggregate it"):
            source.query("loadpilot_test_load")
        with pytest.raises(QueryUnavailable, match=r"query 'sum\(': Prometheus refused it: bad_data"):
            source.query("sum(")
    finally:
        source.close()
    away = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    with pytest.raises(TemporaryError, match=r"query 'up': cannot reach Prometheus"):
        away.query("up")
    away.close()


def query_config(tmp_path: Path, prometheus_url: str, **autoscale: Any) -> Config:
    """One pool autoscaled by target tracking on a Prometheus query (target 1 per worker), the controller's
    settings and a file:// leadership."""
    pool = pool_config(initial=2, autoscale={**AUTOSCALE, "metric": "query", "query": LOAD, **autoscale})
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "pools": [pool.model_dump(mode="json", exclude_none=True)],
            "control": {"tick_s": 1.0, "prometheus_url": prometheus_url, "prometheus_timeout_s": 1.0},
            "coordination": {"url": f"file://{tmp_path / 'coord'}", "tick_s": 0.2, "member_timeout_s": 10.0},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store in the test's folder."""
    opened = open_store(f"sqlite:///{tmp_path / 'loadpilot.db'}")
    yield opened
    opened.close()


def test_a_controller_scales_out_on_a_query_holds_without_data_and_when_prometheus_is_away(
    tmp_path: Path,
    exporter: Exporter,
    store: Store,
    start_pool: Callable[[PoolConfig], RunningPool],
) -> None:
    controller: Controller | None = None
    try:
        with running_prometheus(tmp_path, {"exporter": [exporter.target]}) as prometheus:
            config = query_config(tmp_path, prometheus.url)
            pool = start_pool(config.pools[0])
            pool.wait_ready(2)
            seat = Seat(CoordSettings(**config.coordination_options()), "c", {})
            controller = Controller(config, store, seat, "c")
            exporter.load.labels("web").set(3.0)  # 3 per worker, 3x the target of 1
            seen(prometheus, "web", 3.0)
            t0 = float(int(time.time()))
            controller.step(t0)
            assert controller.leading
            pool.wait_ready(4)  # ceil(2 x 3) = 6, within max 4
            [out] = store.events(kind="scale", subject="pool/web")
            assert out.result == "ok" and (out.details["from"], out.details["to"]) == (2, 4)
            assert out.reason.startswith("target: query 3 per worker on 2 ready is 3.00x the target 1 -> 6")
            assert out.details["metric"] == "query"

            exporter.load.remove("web")  # the series goes away: Prometheus answers nothing
            seen(prometheus, "web", None)
            controller.step(t0 + 10)
            [hold] = store.events(kind="hold", subject="pool/web")
            assert hold.reason.startswith(f"no answer to the query {LOAD!r} for the ready workers yet; keep")
        # Prometheus has stopped: the reading is unavailable, the pool keeps its size, the controller goes on.
        controller.step(t0 + 20)
        holds = store.events(kind="hold", subject="pool/web")
        assert len(holds) == 2, holds
        assert holds[0].reason.startswith(f"query {expand(LOAD, 'web')!r}: cannot reach Prometheus")
        assert pool.state().desired == 4
        assert not controller.pools["web"].flagged
    finally:
        if controller is not None:
            controller.close()


def test_a_query_is_the_metric_per_worker_the_policy_compares_to_its_target() -> None:
    settings = AutoscaleConfig(enabled=True, metric="query", query=LOAD, target=10.0, stabilisation_down_s=0.0)
    view = PoolView("web", desired=2, size=2, ready=2, min=1, max=8, queries={LOAD: 25.0}, observed_at=100.0)
    decision, _ = decide(view, settings, None, 100.0)
    assert [a.size for a in decision.actions if isinstance(a, ScaleTo)] == [5]  # ceil(2 x 25 / 10)
    assert view.metric("query", LOAD) == 25.0 and view.metric("query", "other") is None
    checks = [ScalingCheck(metric="query", query=LOAD), ScalingCheck(metric="query", query="up"), ScalingCheck()]
    pool = PoolConfig.model_validate({"name": "web", "command": "x {fd}", "health": {"path": ""}})
    pool.autoscale = settings.model_copy(update={"checks": checks})
    assert pool_queries(pool) == [LOAD, "up"]  # each query once, asked once per evaluation


def test_the_simulator_refuses_query_checks() -> None:
    settings = AutoscaleConfig(enabled=True, metric="query", query="up")
    with pytest.raises(ValueError, match='the simulator has no Prometheus: checks with metric = "query"'):
        simulate("target", np.ones(10), SimSetup(), settings=settings)
