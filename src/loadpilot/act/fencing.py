"""Fencing: an actuator refuses actions from a leader that has been replaced.

Every action a controller sends carries the epoch of its leadership term (loadpilot.coord.leader), and epochs only
grow. The actuator remembers the newest epoch that has acted on it, in a file so that a restart does not forget
it, and refuses anything older: a leader that was paused (SIGSTOP, a long GC, a frozen VM) past its lease and
resumed believing it still leads cannot undo what its successor did. The check and the action happen under one
lock, so an older action can never land after a newer one.

Epoch 0 means "by hand" (an operator's command): it is not fenced and does not move the newest epoch.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadpilot.errors import StaleEpochError, TemporaryError


class EpochFence:
    """The newest leadership epoch seen by one target, kept in `path` (JSON) and guarded by `path`.lock."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target

    def newest(self) -> int:
        """The newest epoch that has acted on the target (0: none yet)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return int(data["epoch"])
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TemporaryError(f"{self.target}: cannot read the epoch fence {self.path}: {exc}") from exc

    @contextmanager
    def admit(self, epoch: int) -> Iterator[int]:
        """Hold the fence while an action of `epoch` is applied; StaleEpochError when a newer epoch has acted.

        Yields the newest epoch seen before this one. The newer epoch is recorded (durably) before the action
        runs: an action that then fails still proves that its leader's term has begun.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            newest = self.newest()
            if epoch and epoch < newest:
                raise StaleEpochError(self.target, epoch, newest)
            if epoch > newest:
                self._record(epoch)
            yield newest
        finally:
            os.close(fd)  # closing drops the flock

    def _record(self, epoch: int) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"epoch": epoch, "recorded_at": time.time()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
