"""An event that a signal handler may set.

`threading.Event.set` takes a lock. Python runs a signal handler in the main thread between two bytecodes, so a
handler that sets an event while the main thread is inside that event's lock (in `wait`, `set` or `clear`) waits
for ever for a lock its own thread holds: seen as a pool supervisor hung by a SIGCHLD. `WakeEvent` keeps its state
in a flag and wakes waiters through a pipe (a self-pipe, as `signal.set_wakeup_fd` does): `set` takes no lock.
"""

from __future__ import annotations

import contextlib
import os
import select
import time


class WakeEvent:
    """`threading.Event`'s set, clear, is_set and wait, safe to set from a signal handler or any thread."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # not inherited by child processes (PEP 446)
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._flag = False

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._flag = True
        with contextlib.suppress(OSError):  # the pipe is full (waiters will wake anyway) or closed
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._flag

    def clear(self) -> None:
        """Reset the flag (and forget pending wake-ups)."""
        self._flag = False
        self._drain()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or `timeout` seconds pass; return the flag."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._flag:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            readable, _, _ = select.select([self._read], [], [], left)
            if readable and not self._flag:
                self._drain()  # a wake-up from before the last clear(): wait on
        return self._flag

    def _drain(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: empty
            while os.read(self._read, 4096):
                pass

    def __del__(self) -> None:
        for fd in (getattr(self, "_read", None), getattr(self, "_write", None)):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
