"""Partitioned polling with real processes: 2,000 shared resources sampled every second by 3 agents, on the file
backend and on Redis; a 4th joins, one leaves gracefully, one is killed with SIGKILL. Then, for every resource
and slot of the window, we count the stored samples and the polls.

replicas = 1: no duplicate in the store, and no gap except the killed member's resources while the others had
not noticed it yet (member timeout + a tick or two). replicas = 2: no gap at all. Both groups run side by side.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.coord.agent_proc import keys_of
from tests.coord.conftest import backend_url
from tests.helpers import terminate_all, wait_for

N = 2000
TIMEOUT_S = 4.0  # member timeout
ROOT = Path(__file__).parent.parent.parent
SETTLE_TIMEOUT_S = 40.0
STEADY_S = 2.0  # between changes, a few slots of steady state


@dataclass
class Group:
    """One group of agent processes sharing the resources with `replicas` owners each."""

    name: str
    replicas: int
    url: str
    folder: Path
    namespace: str = field(default_factory=lambda: f"s{uuid.uuid4().hex[:8]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return self.folder / f"{self.name}.db"

    def polls(self, member: str) -> Path:
        return self.folder / f"{self.name}-{member}.polls"

    def start(self, member: str) -> None:
        log = open(self.folder / f"{self.name}-{member}.log", "ab")  # noqa: SIM115 (the child keeps it)
        args = ["--url", self.url, "--namespace", self.namespace, "--member", member, "--store", str(self.store)]
        args += ["--polls", str(self.polls(member)), "--replicas", str(self.replicas), "--timeout", str(TIMEOUT_S)]
        self.procs[member] = subprocess.Popen(
            [sys.executable, "-m", "tests.coord.agent_proc", *args, "--resources", str(N)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def last_polled(self, member: str) -> tuple[int, set[int]]:
        """The last slot a member logged, and what it polled then."""
        path = self.polls(member)
        lines = path.read_text().splitlines() if path.exists() else []
        if not lines:
            return -1, set()
        slot, polled = lines[-1].split("\t")
        return int(slot), {int(i) for i in polled.split(",") if i}

    def settled(self, members: list[str]) -> bool:
        """Each of `members` polled in the current slot, and together exactly `replicas` times every resource."""
        slots, counts = set(), Counter[int]()
        for member in members:
            slot, polled = self.last_polled(member)
            slots.add(slot)
            counts.update(polled)
        return len(slots) == 1 and len(counts) == N and set(counts.values()) == {self.replicas}


def _wait_settled(groups: list[Group], members: list[str]) -> None:
    for g in groups:
        assert all(p.poll() is None for m, p in g.procs.items() if m in members), f"{g.name}: an agent died"
    ok = wait_for(lambda: all(g.settled(members) for g in groups), timeout=SETTLE_TIMEOUT_S, interval=0.25)
    assert ok, f"not settled over {members}: " + "; ".join(
        f"{g.name}: {[(m, g.last_polled(m)[0], len(g.last_polled(m)[1])) for m in members]}" for g in groups
    )


def _slot() -> int:
    return math.floor(time.time())


def _stored(group: Group, start: int, end: int) -> Counter[tuple[str, int]]:
    with sqlite3.connect(group.store) as db:
        rows = db.execute(
            # At a 1 s interval a sample's slot start (t0) is its slot.
            "SELECT x.resource_id, CAST(s.t0 AS INTEGER) FROM samples s JOIN series x ON x.id = s.series "
            "WHERE s.t0 >= ? AND s.t0 < ?",
            (start, end),
        ).fetchall()
    return Counter((rid, slot) for rid, slot in rows)


def _polled(group: Group, start: int, end: int) -> Counter[tuple[str, int]]:
    keys = keys_of(N)
    out: Counter[tuple[str, int]] = Counter()
    for member in group.procs:
        for line in group.polls(member).read_text().splitlines():
            slot, polled = line.split("\t")
            if start <= int(slot) < end:
                out.update((keys[int(i)], int(slot)) for i in polled.split(",") if i)
    return out


@pytest.mark.scenario
@pytest.mark.parametrize("kind", ["file", "redis"])
def test_joins_leaves_and_a_kill_lose_no_slot_outside_the_detection_window(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = backend_url(request, kind, tmp_path)
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"{time.monotonic() - t0:6.1f} s  {what}")

    groups = [Group("r1", 1, url, tmp_path), Group("r2", 2, url, tmp_path)]
    try:
        for g in groups:
            for member in ("a", "b", "c"):
                g.start(member)
        _wait_settled(groups, ["a", "b", "c"])
        mark("3 settled")
        time.sleep(STEADY_S)
        start = _slot() + 1
        for g in groups:
            g.start("d")
        _wait_settled(groups, ["a", "b", "c", "d"])
        mark("4 settled")
        time.sleep(STEADY_S)
        for g in groups:
            g.procs["b"].send_signal(signal.SIGTERM)  # graceful: drains, then leaves
        for g in groups:
            assert g.procs["b"].wait(timeout=40) == 0
        _wait_settled(groups, ["a", "c", "d"])
        mark("b left, settled")
        time.sleep(STEADY_S)
        killed_owned = {g.name: g.last_polled("c")[1] for g in groups}
        kill_slot = _slot()
        for g in groups:
            g.procs["c"].send_signal(signal.SIGKILL)
        _wait_settled(groups, ["a", "d"])
        mark("c killed, settled")
        noticed = _slot() - kill_slot
        time.sleep(2.0)
        end = _slot()
    finally:
        for g in groups:
            terminate_all(g.procs.values())
        mark("stopped")

    keys = keys_of(N)
    window = [(k, s) for s in range(start, end) for k in keys]
    detection_end = kill_slot + math.ceil(TIMEOUT_S) + 3  # noticed after the member timeout, plus ticks
    for g in groups:
        stored, polled = _stored(g, start, end), _polled(g, start, end)
        gaps = [(k, s) for k, s in window if stored[(k, s)] == 0]
        doubled = sum(1 for n in polled.values() if n > g.replicas)
        print(  # shown with -s: what the run looked like
            f"\n{kind} {g.name}: {end - start} slots x {N} resources; polls {sum(polled.values())}, "
            f"polled more than {g.replicas}x: {doubled}; stored {sum(stored.values())}; gaps {len(gaps)} "
            f"(kill noticed within {noticed} s)"
        )
        assert max(stored.values()) == 1, "the store holds a sample twice"
        assert all(n <= 2 * g.replicas for n in polled.values())
        if g.replicas == 2:
            assert gaps == [], gaps[:10]
        else:
            index = {k: i for i, k in enumerate(keys)}
            allowed = killed_owned[g.name]
            outside = [(k, s) for k, s in gaps if not (index[k] in allowed and kill_slot <= s <= detection_end)]
            assert outside == [], outside[:10]
        # Make before break: a resource is polled twice for a moment only, never for long.
        runs = Counter(k for (k, _), n in polled.items() if n > g.replicas)
        assert max(runs.values(), default=0) <= 4, runs.most_common(3)
