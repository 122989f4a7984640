"""One contract for every coordination backend (file, Redis, etcd, ZooKeeper): membership, records, leadership.

These run against real backends, so they wait in real time; every wait has a generous margin (the machine is
shared), and no test asserts a tight timing.

On ZooKeeper a member lives as long as its session, which kazoo's own thread keeps alive, so stopping tooz's heart
is not enough to stand for a stopped process there: each member reaches ZooKeeper through a forwarder of its own
(servers.CutOff) that a pause cuts, as a stopped process or a cut-off network would.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace

import pytest
from tooz import coordination

from loadpilot.coord.backend import CoordSettings, connect, disconnect
from loadpilot.coord.leader import Leadership, leadership, read_term
from loadpilot.coord.membership import Membership
from loadpilot.coord.records import Records, SwapRecords, open_records
from loadpilot.coord.status import read_status
from loadpilot.errors import TemporaryError
from tests.coord.conftest import SettingsFactory
from tests.coord.servers import CutOff
from tests.helpers import wait_for

SLACK_S = 5.0  # on top of what the protocol promises, for a loaded machine


class Node:
    """One member: a coordinator, its records, and what it does in the test."""

    def __init__(self, settings: CoordSettings, member_id: str) -> None:
        self.link: CutOff | None = None
        if settings.kind == "zookeeper":
            self.link = CutOff(urllib.parse.urlsplit(settings.url).port or 2181)
            settings = replace(settings, url=self.link.url("zookeeper"))
        self.settings = settings
        self.id = member_id
        self.coordinator: coordination.CoordinationDriver = connect(settings, member_id)
        self.records: Records = open_records(settings, self.coordinator)
        self.membership = Membership(
            self.coordinator, settings.group("agents"), member_id, {"kind": "agent", "weight": 2}, self.records
        )
        self.leadership: Leadership = leadership(settings, self.coordinator, self.records, member_id)
        self.beating = self.coordinator.heart.is_alive()  # not on ZooKeeper: kazoo keeps the session itself

    def pause_heart(self) -> None:
        """Stop heartbeating, as a stopped or cut-off process would (ZooKeeper: cut its link)."""
        if self.beating:
            self.coordinator.heart.stop()
            self.coordinator.heart.wait()
        if self.link is not None:
            self.link.cut()

    def resume_heart(self) -> None:
        """Beat again, as a process resumed or reconnected would."""
        if self.link is not None:
            self.link.restore()
        if self.beating:
            self.coordinator.heart.start()

    def ticks(self) -> bool:
        """One membership tick; False while the backend cannot be reached yet (reconnecting after a pause)."""
        try:
            self.membership.tick()
        except TemporaryError:
            return False
        return True

    def close(self) -> None:
        try:
            disconnect(self.coordinator)
        finally:
            self.records.close()
            if self.link is not None:
                self.link.stop()


@pytest.fixture
def nodes(settings: SettingsFactory) -> Iterator[list[Node]]:
    made: list[Node] = []
    s = settings()
    made += [Node(s, "a"), Node(s, "b")]
    yield made
    closing = [threading.Thread(target=node.close) for node in made]  # tooz's stop waits ~1 s for its executor
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(timeout=30)


def test_members_see_each_other_with_their_capabilities(nodes: list[Node]) -> None:
    a, b = nodes
    a.membership.join()
    b.membership.join()
    live = a.membership.tick()
    assert set(live) == {"a", "b"}
    assert live["b"].kind == "agent" and live["b"].weight == 2.0
    assert set(b.membership.tick()) == {"a", "b"}


def test_watchers_report_joins_and_leaves_when_run(nodes: list[Node]) -> None:
    a, b = nodes
    a.membership.join()
    a.membership.tick()
    b.membership.join()
    a.membership.tick()
    assert [(e.kind, e.member) for e in a.membership.events if e.member == "b"] == [("joined", "b")]
    b.membership.leave()
    assert set(a.membership.tick()) == {"a"}
    assert ("left", "b") in [(e.kind, e.member) for e in a.membership.events]


def test_a_member_that_stops_beating_is_gone_after_the_timeout_and_comes_back(nodes: list[Node]) -> None:
    a, b = nodes
    a.membership.join()
    b.membership.join()
    assert set(a.membership.tick()) == {"a", "b"}
    b.pause_heart()
    started = time.monotonic()
    assert wait_for(lambda: "b" not in a.membership.tick(), timeout=a.settings.member_timeout + SLACK_S, interval=0.1)
    gone_after = time.monotonic() - started
    assert gone_after < a.settings.member_timeout + SLACK_S
    # It resumes: the heart beats again and its next tick joins again if the backend forgot it.
    b.resume_heart()
    assert wait_for(lambda: b.ticks() and "b" in a.membership.tick(), timeout=SLACK_S, interval=0.1)


def test_records_round_trip_in_the_backend(nodes: list[Node]) -> None:
    a, b = nodes
    a.records.put("t", "x/y z", b'{"v":1}', durable=True)
    a.records.put("t", "w", b"2")
    assert b.records.get("t", "x/y z") == b'{"v":1}'
    assert b.records.all("t") == {"x/y z": b'{"v":1}', "w": b"2"}
    b.records.delete("t", "w")
    assert a.records.all("t") == {"x/y z": b'{"v":1}'} and a.records.get("t", "w") is None
    assert a.records.all("empty") == {}


def _leaders(nodes: list[Node]) -> list[str]:
    return [n.id for n in nodes if n.leadership.is_leader()]


def test_exactly_one_leads_and_each_term_has_a_larger_epoch(nodes: list[Node]) -> None:
    a, b = nodes
    for _ in range(5):
        a.leadership.tick()
        b.leadership.tick()
        assert len(_leaders(nodes)) == 1
    first = next(n for n in nodes if n.leadership.is_leader())
    other = b if first is a else a
    epoch = first.leadership.epoch
    assert epoch >= 1
    term = read_term(other.records)
    assert term is not None and term.leader == first.id and term.epoch == epoch
    first.leadership.resign()
    assert wait_for(lambda: other.leadership.tick(), timeout=SLACK_S, interval=0.05)
    assert other.leadership.epoch == epoch + 1
    assert not first.leadership.tick()  # the other's term holds now
    assert _leaders(nodes) == [other.id]
    # A member that resigned and leads again starts a new term: a new epoch, never its old one again.
    other.leadership.resign()
    assert wait_for(lambda: other.leadership.tick(), timeout=SLACK_S, interval=0.05)
    assert other.leadership.epoch == epoch + 2
    again = read_term(first.records)
    assert again is not None and (again.leader, again.epoch) == (other.id, epoch + 2)


def test_a_leader_that_cannot_renew_stops_before_another_starts(nodes: list[Node]) -> None:
    a, b = nodes
    assert wait_for(lambda: a.leadership.tick(), timeout=SLACK_S, interval=0.05)
    assert not b.leadership.tick()
    a.pause_heart()  # and a's loop stops ticking: paused, as with SIGSTOP
    stopped = time.monotonic()
    a_stopped_at = b_started_at = None
    while time.monotonic() - stopped < a.settings.lease_s + SLACK_S:
        b_leads = b.leadership.tick()
        a_leads = a.leadership.is_leader()  # what a would believe if it woke now, without renewing
        assert not (a_leads and b_leads), "two leaders at once"
        now = time.monotonic() - stopped
        if not a_leads and a_stopped_at is None:
            a_stopped_at = now
        if b_leads:
            b_started_at = now
            break
        time.sleep(0.05)
    assert a_stopped_at is not None and b_started_at is not None, "no takeover"
    assert a_stopped_at < b_started_at
    assert b_started_at < a.settings.lease_s + a.settings.tick_s + SLACK_S
    assert b.leadership.epoch > a.leadership.epoch
    # a resumes: it finds out at its next tick and does not lead.
    a.resume_heart()
    assert not a.leadership.tick()
    assert _leaders(nodes) == ["b"]


def test_candidates_ticking_at_once_make_one_leader_and_one_epoch_per_term(nodes: list[Node]) -> None:
    epochs = []
    for _ in range(4):
        start = threading.Barrier(2)
        led: dict[str, bool] = {}

        def campaign(node: Node, barrier: threading.Barrier = start, out: dict[str, bool] = led) -> None:
            barrier.wait()
            out[node.id] = node.leadership.tick()

        threads = [threading.Thread(target=campaign, args=(node,)) for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        winners = [node for node in nodes if led.get(node.id)]
        assert len(winners) == 1, led
        epochs.append(winners[0].leadership.epoch)
        winners[0].leadership.resign()
    assert epochs == list(range(epochs[0], epochs[0] + 4)), epochs


@pytest.mark.parametrize("settings", ["zookeeper"], indirect=True)
def test_a_swap_writes_only_over_what_the_writer_read(nodes: list[Node]) -> None:
    a, b = nodes
    assert isinstance(a.records, SwapRecords) and isinstance(b.records, SwapRecords)
    assert a.records.swap("t", "k", None, b"1")
    assert not b.records.swap("t", "k", None, b"2")  # it exists now
    assert b.records.swap("t", "k", b"1", b"2")
    assert not a.records.swap("t", "k", b"1", b"3")  # a read "1": b changed it since
    assert a.records.get("t", "k") == b"2"
    # Writers racing from the same read: exactly one of them wins.
    start = threading.Barrier(8)
    won: list[bytes] = []

    def race(records: SwapRecords, value: bytes) -> None:
        start.wait()
        if records.swap("t", "k", b"2", value):
            won.append(value)

    threads = [
        threading.Thread(target=race, args=(node.records, f"{node.id}{i}".encode())) for i in range(4) for node in nodes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1 and a.records.get("t", "k") == won[0]


def test_status_reads_the_members_and_the_leader_from_the_backend(nodes: list[Node]) -> None:
    a, b = nodes
    a.membership.join()
    b.membership.join()
    a.membership.tick()
    b.membership.tick()
    assert wait_for(lambda: a.leadership.tick(), timeout=SLACK_S, interval=0.05)
    status = read_status(a.settings)  # an observer of its own: no group joined, no heart
    assert status.leader is not None and (status.leader.leader, status.leader.epoch) == ("a", a.leadership.epoch)
    agents = {m.id: m for m in status.members if m.role == "agents"}
    assert set(agents) == {"a", "b"} and all(m.alive for m in agents.values())
    assert agents["b"].capabilities.get("weight") == 2 and agents["b"].beat_at is not None
