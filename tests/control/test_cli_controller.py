"""`loadpilot controller` as real processes: one leads, SIGTERM resigns at once, the other takes over."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import tomli_w

from loadpilot.control.status import read_statuses
from loadpilot.store import open_store
from tests.act.pool.conftest import pool_config
from tests.control.conftest import AUTOSCALE
from tests.helpers import wait_for

LEASE_S = 10.0


def _config(tmp_path: Path) -> Path:
    pool = pool_config(autoscale=AUTOSCALE).model_dump(mode="json", exclude_none=True)
    data = {
        "state_dir": str(tmp_path / "state"),
        "pools": [pool],
        "control": {"tick_s": 0.5},
        "coordination": {"tick_s": 0.2, "member_timeout_s": LEASE_S},
    }
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _controller(config: Path, member: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "loadpilot", "controller", "--config", str(config), "--member", member],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_sigterm_resigns_so_the_standby_takes_over_before_the_lease_ends(tmp_path: Path) -> None:
    config = _config(tmp_path)
    state = tmp_path / "state"
    first = _controller(config, "c1", tmp_path / "c1.log")
    second = None
    try:

        def leader() -> str | None:
            live = [s for s in read_statuses(state) if s.leading and s.live]
            return live[0].member if live else None

        assert wait_for(lambda: leader() == "c1", timeout=30), (tmp_path / "c1.log").read_text()
        second = _controller(config, "c2", tmp_path / "c2.log")
        assert wait_for(lambda: any(s.member == "c2" for s in read_statuses(state)), timeout=30)
        assert leader() == "c1"
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
        # The resigned term lets c2 lead at its next tick, long before c1's lease would have run out.
        assert wait_for(lambda: leader() == "c2", timeout=LEASE_S / 2), (tmp_path / "c2.log").read_text()
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    statuses = {s.member: s for s in read_statuses(state)}
    assert statuses["c1"].stopped and statuses["c2"].stopped
    store = open_store(f"sqlite:///{state / 'loadpilot.db'}")
    try:
        leadership = sorted(store.events(kind="leadership"), key=lambda e: e.id or 0)
        # The pool is not running here: the leader says so once (a hold with the reason), and acts on nothing.
        holds = store.events(kind="hold")
        assert not store.events(kind="scale")
    finally:
        store.close()
    assert [(e.subject, e.reason) for e in leadership] == [
        ("controller/c1", "leads with epoch 1"),
        ("controller/c1", "resigned (stopping)"),
        ("controller/c2", "leads with epoch 2"),
        ("controller/c2", "resigned (stopping)"),
    ]
    assert holds and all("not running here" in e.reason and e.result == "kept" for e in holds)
