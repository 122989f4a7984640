"""The controller's actuator call on real pool files: the epoch lands with the size, errors come sorted."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadpilot.act.pool.control import scale
from loadpilot.act.pool.state import PoolPaths, read_desired
from loadpilot.control.actuate import apply_scale
from loadpilot.errors import PermanentError, StaleEpochError, TemporaryError
from loadpilot.model import ScaleTo
from tests.act.pool.conftest import pool_config


@pytest.fixture
def paths(tmp_path: Path) -> PoolPaths:
    paths = PoolPaths.of(tmp_path / "state", "web")
    paths.root.mkdir(parents=True)
    return paths


def test_the_size_is_written_with_the_actions_epoch(paths: PoolPaths) -> None:
    apply_scale(paths, pool_config(), ScaleTo("web", 3, "because", epoch=7))
    desired = read_desired(paths)
    assert desired is not None and (desired.size, desired.epoch) == (3, 7)


def test_an_older_epoch_is_refused_and_changes_nothing(paths: PoolPaths) -> None:
    pool = pool_config()
    scale(paths, pool, 2, epoch=5)  # a newer leader has acted
    with pytest.raises(StaleEpochError, match="epoch 4; epoch 5 has acted"):
        apply_scale(paths, pool, ScaleTo("web", 4, "stale", epoch=4))
    desired = read_desired(paths)
    assert desired is not None and (desired.size, desired.epoch) == (2, 5)


def test_an_unreadable_fence_is_temporary(paths: PoolPaths) -> None:
    paths.fence.write_text("{half a record")
    with pytest.raises(TemporaryError, match="epoch fence"):
        apply_scale(paths, pool_config(), ScaleTo("web", 3, "r", epoch=1))


def test_a_desired_file_that_is_a_directory_is_permanent(paths: PoolPaths) -> None:
    paths.desired.mkdir()
    with pytest.raises(PermanentError, match="cannot write"):
        apply_scale(paths, pool_config(), ScaleTo("web", 3, "r", epoch=1))


def test_a_size_outside_the_bounds_is_permanent(paths: PoolPaths) -> None:
    with pytest.raises(PermanentError, match=r"outside pools.web: min..max = 1..4"):
        apply_scale(paths, pool_config(), ScaleTo("web", 9, "r", epoch=1))


def test_an_action_for_another_pool_is_refused(paths: PoolPaths) -> None:
    with pytest.raises(PermanentError, match="'api'"):
        apply_scale(paths, pool_config(), ScaleTo("api", 2, "r", epoch=1))
