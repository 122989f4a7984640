"""Real components with their /metrics listeners on free 127.0.0.1 ports: pool supervisors (in a thread, real
worker processes), agents (in a thread, shipping to a real server) and a tiny exporter whose values a test sets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, Gauge

from loadpilot.config import Config, PoolConfig
from loadpilot.metrics_http import MetricsListener, serve_metrics
from loadpilot.sense.agent import Agent
from tests.act.pool.conftest import RunningPool
from tests.helpers import wait_for


def listener_of(owner: object, attribute: str = "metrics_listener") -> MetricsListener:
    """The /metrics listener a component started in its run loop (waits for it to be up)."""
    assert wait_for(lambda: getattr(owner, attribute, None) is not None, timeout=15), "no listener started"
    listener = getattr(owner, attribute)
    assert isinstance(listener, MetricsListener)
    return listener


@pytest.fixture
def start_pool(tmp_path: Path) -> Iterator[Callable[[PoolConfig], RunningPool]]:
    """Start supervisors (with their /metrics listener) on real worker processes; stopped, workers checked gone."""
    pools: list[RunningPool] = []

    def start(config: PoolConfig) -> RunningPool:
        pool = RunningPool(config, tmp_path / "state")
        pool.supervisor.metrics.serve = serve_metrics
        pools.append(pool)
        pool.thread.start()
        return pool

    yield start
    for pool in pools:
        if pool.thread.is_alive():
            pool.stop()
        alive = [pid for pid in pool.pids_seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert not alive, f"workers left behind: {alive}"


@pytest.fixture
def start_agent() -> Iterator[Callable[[Config], Agent]]:
    """Run agents in threads (their run loop, listener included); stopped and joined at the end."""
    running: list[tuple[Agent, threading.Thread]] = []

    def start(config: Config) -> Agent:
        agent = Agent(config)
        thread = threading.Thread(target=agent.run, daemon=True)
        running.append((agent, thread))
        thread.start()
        return agent

    yield start
    for agent, thread in running:
        agent.stop()
        agent.stop()  # a second stop: no drain wait
        thread.join(timeout=30)
        assert not thread.is_alive(), "the agent did not stop"


class Exporter:
    """A gauge `loadpilot_test_load{pool}` served on a free port, for Prometheus to scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.load = Gauge("loadpilot_test_load", "Load per worker, set by the test", ["pool"], registry=self.registry)
        self.listener = MetricsListener(self.registry, "127.0.0.1:0", "test exporter").start()

    @property
    def target(self) -> str:
        """host:port for a scrape config."""
        return f"127.0.0.1:{self.listener.port}"


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    """A running test exporter; stopped at the end."""
    made = Exporter()
    try:
        yield made
    finally:
        made.listener.stop()
