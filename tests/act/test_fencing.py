"""Fencing: an actuator refuses actions of a replaced leader, remembers across restarts, and serialises."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from loadpilot.act.fencing import EpochFence
from loadpilot.act.pool.control import restart, scale
from loadpilot.act.pool.state import PoolPaths, read_desired
from loadpilot.config import parse_config
from loadpilot.errors import PermanentError, StaleEpochError


def test_an_older_epoch_is_refused_and_the_newest_survives_a_restart(tmp_path: Path) -> None:
    fence = EpochFence(tmp_path / "fence.json", "pool 'web'")
    assert fence.newest() == 0
    with fence.admit(3) as before:
        assert before == 0
    with fence.admit(3):
        pass  # the same term acts again
    stale = r"pool 'web': refused an action of leadership epoch 2; epoch 3"
    with pytest.raises(StaleEpochError, match=stale) as info, fence.admit(2):
        pytest.fail("a stale action ran")
    assert isinstance(info.value, PermanentError) and (info.value.epoch, info.value.newest) == (2, 3)
    with fence.admit(0):
        pass  # by hand: not fenced
    assert EpochFence(tmp_path / "fence.json", "again").newest() == 3


def test_the_check_and_the_action_are_one_step(tmp_path: Path) -> None:
    """A leader paused inside its action cannot be overtaken: the newer one waits, then goes after it."""
    fence = EpochFence(tmp_path / "fence.json", "t")
    order: list[int] = []
    inside, release = threading.Event(), threading.Event()

    def old_leader() -> None:
        with fence.admit(5):
            inside.set()
            release.wait(10)
            order.append(5)

    def new_leader() -> None:
        with fence.admit(6):
            order.append(6)

    first = threading.Thread(target=old_leader)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=new_leader)
    second.start()
    second.join(0.3)
    assert second.is_alive() and order == []  # blocked behind the action in flight
    release.set()
    first.join(10)
    second.join(10)
    assert order == [5, 6]


def test_pool_scale_and_restart_are_fenced(tmp_path: Path) -> None:
    config = parse_config({"state_dir": str(tmp_path), "pools": [{"name": "web", "command": "app {fd} {port}"}]})
    pool = config.pool("web")
    paths = PoolPaths.of(config.state_path, "web")
    assert scale(paths, pool, 2, epoch=7).epoch == 7
    with pytest.raises(StaleEpochError, match="pool 'web'"):
        scale(paths, pool, 4, epoch=6)
    desired = read_desired(paths)
    assert desired is not None and (desired.size, desired.epoch) == (2, 7)
    with pytest.raises(StaleEpochError):
        restart(paths, pool, epoch=1)
    assert restart(paths, pool, epoch=8).generation == 1
    assert scale(paths, pool, 3).size == 3  # an operator's command (epoch 0) still works
    assert paths.fence.exists()
