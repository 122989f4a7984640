"""Who shares the work (live agents that list the same resources and are not draining), and a backend that
goes away: the member keeps its share and its ticks keep their pace."""

from __future__ import annotations

import signal
import time
import urllib.parse
import uuid

import pytest

from loadpilot.coord import CoordSettings, SharedWork
from loadpilot.coord.backend import connect
from loadpilot.coord.membership import Member
from loadpilot.coord.partition import MemberState
from loadpilot.coord.shared import resources_digest, ring_members
from loadpilot.errors import TemporaryError
from tests.coord.servers import CutOff, redis_process
from tests.helpers import wait_for


def test_only_agents_listing_the_same_resources_and_not_draining_share_them() -> None:
    ours = resources_digest(["b", "a"])
    assert ours == resources_digest(["a", "b"]) != resources_digest(["a"])
    live = {
        "a1": Member("a1", {"kind": "agent", "weight": 2, "resources": ours}),
        "a2": Member("a2", {"kind": "agent", "resources": ours}),
        "old": Member("old", {"kind": "agent", "resources": resources_digest(["a"])}),  # would get what it lacks
        "leaving": Member("leaving", {"kind": "agent", "resources": ours}),
        "ctl": Member("ctl", {"kind": "controller"}),
    }
    states = {"leaving": MemberState("v", 3, draining=True), "a2": MemberState("v", 3)}
    assert ring_members(live, states, "agent", ours) == {"a1": 2.0, "a2": 1.0}


def test_a_redis_that_hangs_or_dies_costs_a_tick_at_most_and_the_share_is_kept() -> None:
    keys = [f"r{i}" for i in range(20)]
    with redis_process() as (url, redis_server):
        settings = CoordSettings(url=url, namespace="away", member_timeout_s=5, tick_s=1)
        work = SharedWork(settings, "m1")
        work.start(keys)
        try:
            assert work.plan(keys, 1).polling == frozenset(keys)  # alone: everything
            redis_server.send_signal(signal.SIGSTOP)  # hangs: calls time out instead of being refused
            for slot in (2, 3):
                started = time.monotonic()
                plan = work.plan(keys, slot)
                work.confirm(plan, time.time())
                took = time.monotonic() - started
                assert plan.polling == frozenset(keys)
                assert took < settings.io_timeout + 1.5, f"a tick waited {took:.1f} s for a hung Redis"
            redis_server.send_signal(signal.SIGCONT)
            assert work.plan(keys, 4).polling == frozenset(keys)
            redis_server.kill()
            redis_server.wait()
            started = time.monotonic()
            plan = work.plan(keys, 5)
            work.confirm(plan, time.time())
            assert plan.polling == frozenset(keys) and time.monotonic() - started < 2.0
        finally:
            work.stop()
    started = time.monotonic()
    with pytest.raises(TemporaryError, match="unreachable"):
        connect(settings, "late")  # tooz alone would retry a refused connection for minutes
    assert time.monotonic() - started < 2.0


def _timed_slot(work: SharedWork, keys: list[str], slot: int) -> float:
    """Plan and confirm one slot; how long it took. The member keeps polling all it polled."""
    started = time.monotonic()
    plan = work.plan(keys, slot)
    work.confirm(plan, time.time())
    assert plan.polling == frozenset(keys)
    return time.monotonic() - started


def _member_again(work: SharedWork) -> bool:
    """True once the member's tick reaches the backend and finds itself in the group."""
    assert work.membership is not None
    try:
        return work.member_id in work.membership.tick()
    except TemporaryError:
        return False


def test_a_zookeeper_that_hangs_or_dies_costs_a_tick_at_most_and_the_share_is_kept(zookeeper_url: str) -> None:
    # kazoo queues calls while it reconnects and waits for ever on them: each of ours has a time limit.
    keys = [f"r{i}" for i in range(20)]
    link = CutOff(urllib.parse.urlsplit(zookeeper_url).port or 2181)
    settings = CoordSettings(url=link.url("zookeeper"), namespace=f"away{uuid.uuid4().hex[:8]}", tick_s=1)
    work = SharedWork(settings, "m1")
    work.start(keys)
    try:
        assert work.plan(keys, 1).polling == frozenset(keys)  # alone: everything
        link.cut()  # hangs: nothing answers, nothing is refused
        for slot in (2, 3):
            took = _timed_slot(work, keys, slot)
            assert took < settings.io_timeout + 1.5, f"a tick waited {took:.1f} s for a hung ZooKeeper"
        link.restore()
        assert wait_for(lambda: _member_again(work), timeout=10)  # the link is back: so is the member
        link.stop()  # dies: connections closed, new ones refused
        for slot in (4, 5):
            took = _timed_slot(work, keys, slot)
            assert took < settings.io_timeout + 1.5, f"a tick waited {took:.1f} s for a dead ZooKeeper"
    finally:
        started = time.monotonic()
        work.stop()
        link.stop()
    assert time.monotonic() - started < settings.io_timeout + 3.0, "leaving waited for a dead ZooKeeper"
