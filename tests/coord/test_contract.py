"""One contract for every coordination backend (file, Redis, etcd): membership, records, leadership.

These run against real backends, so they wait in real time; every wait has a generous margin (the machine is
shared), and no test asserts a tight timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tooz import coordination

from loadpilot.coord.backend import CoordSettings, connect
from loadpilot.coord.leader import Leadership, leadership, read_term
from loadpilot.coord.membership import Membership
from loadpilot.coord.records import Records, open_records
from tests.coord.conftest import SettingsFactory
from tests.helpers import wait_for

SLACK_S = 5.0  # on top of what the protocol promises, for a loaded machine


class Node:
    """One member: a coordinator, its records, and what it does in the test."""

    def __init__(self, settings: CoordSettings, member_id: str) -> None:
        self.settings = settings
        self.id = member_id
        self.coordinator: coordination.CoordinationDriver = connect(settings, member_id)
        self.records: Records = open_records(settings, self.coordinator)
        self.membership = Membership(
            self.coordinator, settings.group("agents"), member_id, {"kind": "agent", "weight": 2}, self.records
        )
        self.leadership: Leadership = leadership(settings, self.coordinator, self.records, member_id)

    def pause_heart(self) -> None:
        """Stop heartbeating, as a stopped or cut-off process would."""
        self.coordinator.heart.stop()
        self.coordinator.heart.wait()

    def close(self) -> None:
        try:
            self.coordinator.stop()
        finally:
            self.records.close()


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
    b.coordinator.heart.start()
    b.membership.tick()
    assert wait_for(lambda: "b" in a.membership.tick(), timeout=SLACK_S, interval=0.1)


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
    a.coordinator.heart.start()
    assert not a.leadership.tick()
    assert _leaders(nodes) == ["b"]
