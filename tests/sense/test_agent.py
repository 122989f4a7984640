"""The agent loop with a real server over loopback."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import ClassVar

from loadpilot.model import Resource
from loadpilot.sense.agent import RESOURCE_REFRESH_S, Agent
from loadpilot.sense.collectors import Collection, CollectorOptions
from loadpilot.store import open_store
from tests.helpers import free_port, make_config, running_server, wait_for

NOW = float(int(time.time()))  # readings a server takes: not ahead of its clock


class Fixed:
    """A collector that reports `n` metrics of one resource, or fails when told to."""

    Options: ClassVar[type[CollectorOptions]] = CollectorOptions

    def __init__(self, n: int = 3, fail: bool = False, value: float = 1.0) -> None:
        self.n, self.fail, self.value = n, fail, value
        self.labels = {"k": "v"}

    def collect(self, now: float) -> Collection:
        if self.fail:
            raise RuntimeError("broken on purpose")
        out = Collection(resources=[Resource("r1", "thing", dict(self.labels))])
        for i in range(self.n):
            out.add("r1", f"m{i}", self.value, now, "", "fixed")
        return out

    def close(self) -> None:
        pass


def test_one_collection_reaches_the_store_with_the_agents_own_metrics(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port(), max_batch_samples=4)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    agent = Agent(config, [Fixed(n=3), Fixed(fail=True), Fixed(n=2, value=float("nan"))])
    with running_server(config, store):
        samples = agent.collect_once(NOW)
        assert agent.shipper.ship_pending()
    agent.shutdown()
    assert agent.stats.collector_errors == 1
    assert len(samples) == 3 + 6  # NaN readings are dropped; six self-metrics of the agent
    assert store.counts()["batches"] == 3  # 9 samples at 4 per batch
    assert {r.id for r in store.resources()} == {"r1", "agent/agent-test"}
    latest = {(s.resource_id, s.metric): s.value for s in store.latest()}
    assert latest[("r1", "m2")] == 1.0 and latest[("agent/agent-test", "spool.dropped_batches")] == 0.0


def test_the_loop_reads_once_per_slot_and_flushes_on_stop(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port(), interval_s=0.2)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    agent = Agent(config, [Fixed(n=1)])
    with running_server(config, store):
        thread = threading.Thread(target=agent.run)
        thread.start()
        assert wait_for(lambda: agent.stats.ticks >= 6, timeout=10)
        agent.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
    rows = store.series("r1", "m0", 0, 4e9)
    assert len(rows) == agent.stats.ticks  # every reading stored, none twice
    slots = [round(s.timestamp / 0.2 - 0.5) for s in rows]
    assert len(set(slots)) == len(slots)
    assert agent.spool.path.exists()


def test_batches_wait_in_the_spool_until_a_server_appears(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port(), flush_timeout_s=0.2)
    first = Agent(config, [Fixed(n=2)])
    first.collect_once(NOW - 10)
    first.collect_once(NOW - 5)
    first.shutdown()  # no server: both batches stay on disk
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    second = Agent(config, [Fixed(n=2)])
    assert second.spool.stats().batches == 2
    with running_server(config, store):
        assert second.shipper.ship_pending()
    second.shutdown()
    assert len(store.series("r1", "m0", 0, 4e9)) == 2


def test_resources_are_described_when_new_changed_or_due(tmp_path: Path) -> None:
    """Each batch names its resources only when the server may not know them as they are now."""
    config = make_config(tmp_path, free_port())
    collector = Fixed(n=1)
    agent = Agent(config, [collector])
    t0 = 1_800_000_000.0

    def described_at(now: float) -> set[str]:
        agent.collect_once(now)
        [batch] = agent.spool.oldest()
        agent.spool.ack(batch.seq)
        return {r["id"] for r in json.loads(batch.body)["resources"]}

    assert described_at(t0) == {"r1", "agent/agent-test"}
    assert described_at(t0 + 5) == set()
    collector.labels = {"k": "changed"}
    assert described_at(t0 + 10) == {"r1"}
    assert described_at(t0 + 5 + RESOURCE_REFRESH_S) == {"agent/agent-test"}  # r1 was described again at t0 + 10
    assert described_at(t0 + 10 + RESOURCE_REFRESH_S) == {"r1"}
    agent.shutdown()
