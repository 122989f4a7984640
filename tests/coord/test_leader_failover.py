"""Leader failover with real processes, on the file backend and on Redis.

kill -9 the leader: a standby leads within the member timeout and a tick. Pause the leader (SIGSTOP) right after
it checked that it leads and before it acts, past its lease: on resuming its action is refused by the actuator's
fence (epoch), and it notices it lost. Pause a leader at any other moment: it resumes knowing it lost, and acts
no more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from loadpilot.act.fencing import EpochFence
from loadpilot.act.pool.state import PoolPaths, read_desired
from tests.coord.conftest import backend_url
from tests.helpers import terminate_all, wait_for

TIMEOUT_S = 3.0
TICK_S = 0.5
SLACK_S = 2.0  # scheduling on a busy machine, on top of what the protocol promises
ROOT = Path(__file__).parent.parent.parent


class Controllers:
    """Stand-in controllers (tests/coord/leader_proc.py) sharing one backend and one fenced pool."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        self.namespace = f"l{uuid.uuid4().hex[:8]}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, member: str) -> None:
        args = ["--url", self.url, "--namespace", self.namespace, "--member", member, "--state", str(self.folder)]
        args += ["--events", str(self.folder / f"{member}.events"), "--timeout", str(TIMEOUT_S), "--tick", str(TICK_S)]
        log = open(self.folder / f"{member}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.procs[member] = subprocess.Popen(
            [sys.executable, "-m", "tests.coord.leader_proc", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def events(self, member: str, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.folder / f"{member}.events"
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines if line.strip()]
        return [e for e in found if kind is None or e["event"] == kind]

    def leader(self) -> str | None:
        """Who leads now, from each one's last leading/lost event."""
        leading = []
        for member in self.procs:
            changes = [e for e in self.events(member) if e["event"] in ("leading", "lost")]
            if changes and changes[-1]["event"] == "leading" and self.procs[member].poll() is None:
                leading.append(member)
        return leading[0] if len(leading) == 1 else None

    def start_two(self) -> None:
        """a, acting as the leader, then b, a standby campaigning."""
        self.start("a")
        assert wait_for(lambda: self.events("a", "applied"), timeout=30)
        self.start("b")
        assert wait_for(lambda: self.events("b", "started"), timeout=30)


@pytest.fixture(params=["file", "redis"])
def controllers(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    group = Controllers(backend_url(request, request.param, tmp_path), tmp_path)
    yield group
    terminate_all(group.procs.values(), timeout=20)


def _stopped(proc: subprocess.Popen[bytes]) -> bool:
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.scenario
def test_a_standby_leads_within_the_member_timeout_after_the_leader_is_killed(controllers: Controllers) -> None:
    controllers.start_two()
    time.sleep(2 * TICK_S)  # b is campaigning
    old_epoch = controllers.events("a", "leading")[-1]["epoch"]
    killed_at = time.time()
    controllers.procs["a"].send_signal(signal.SIGKILL)
    assert wait_for(lambda: controllers.events("b", "leading"), timeout=TIMEOUT_S + TICK_S + 10)
    took = controllers.events("b", "leading")[0]
    takeover = took["t"] - killed_at
    print(f"\ntakeover after SIGKILL: {takeover:.2f} s (member timeout {TIMEOUT_S:g} s, tick {TICK_S:g} s)")
    assert takeover <= TIMEOUT_S + TICK_S + SLACK_S
    assert took["epoch"] > old_epoch
    assert wait_for(lambda: controllers.events("b", "applied"), timeout=10)


@pytest.mark.scenario
def test_a_paused_leader_cannot_get_an_action_applied_after_resuming(controllers: Controllers) -> None:
    controllers.start_two()
    a_epoch = controllers.events("a", "leading")[-1]["epoch"]

    # a stops itself between "I lead" and its action, for longer than its lease.
    (controllers.folder / "pause-a").touch()
    assert wait_for(lambda: _stopped(controllers.procs["a"]), timeout=10)
    assert wait_for(lambda: controllers.events("b", "applied"), timeout=TIMEOUT_S + TICK_S + 10)
    b_epoch = controllers.events("b", "leading")[-1]["epoch"]
    assert b_epoch > a_epoch
    controllers.procs["a"].send_signal(signal.SIGCONT)
    assert wait_for(lambda: controllers.events("a", "refused"), timeout=10)
    refused = controllers.events("a", "refused")[0]
    assert (refused["epoch"], refused["newest"]) == (a_epoch, b_epoch)
    assert wait_for(lambda: controllers.events("a", "lost"), timeout=10)
    resumed_at = controllers.events("a", "resumed")[0]["t"]
    assert not [e for e in controllers.events("a", "applied") if e["t"] > resumed_at]

    # Now pause b from outside, at whatever moment, past its lease: a takes over; b resumes and acts no more.
    time.sleep(TICK_S * 3)
    controllers.procs["b"].send_signal(signal.SIGSTOP)
    paused_at = time.time()
    assert wait_for(lambda: [e for e in controllers.events("a", "leading") if e["t"] > paused_at], timeout=20)
    time.sleep(TICK_S * 2)
    controllers.procs["b"].send_signal(signal.SIGCONT)
    resumed = time.time()
    assert wait_for(lambda: [e for e in controllers.events("b", "lost") if e["t"] >= resumed - 0.1], timeout=10)
    time.sleep(TICK_S * 3)
    # Paused between its check and its action, b may still try once: the fence refuses it. Paused inside an action
    # the fence had already admitted (it holds the fence's lock), b finishes that one on resuming, before a's
    # first action can be admitted. Nothing b begins after resuming applies.
    began_after: list[dict[str, Any]] = []
    acting: dict[str, Any] | None = None
    for e in controllers.events("b"):
        if e["event"] == "acting":
            acting = e
        elif e["event"] == "applied" and e["t"] >= resumed:
            assert acting is not None
            began_after += [e] if acting["t"] >= paused_at else []
    assert began_after == [], began_after
    assert controllers.leader() == "a"
    newest = controllers.events("a", "leading")[-1]["epoch"]
    assert EpochFence(PoolPaths.of(controllers.folder, "fenced").fence, "x").newest() == newest
    desired = read_desired(PoolPaths.of(controllers.folder, "fenced"))
    assert desired is not None and desired.epoch == newest
