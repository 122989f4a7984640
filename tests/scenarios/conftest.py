"""Scenario tests run real loadpilot processes; these fixtures start them and make sure they stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Launcher = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start `loadpilot <args>` as a child process logging to a file; every child is stopped at teardown."""
    children: list[subprocess.Popen[str]] = []

    def start(*args: str, log_name: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
        """sigint_ignored: start it as a shell starts a background job, with SIGINT ignored (inherited)."""
        log = open(tmp_path / f"{log_name}.log", "a")  # noqa: SIM115 (closed with the process)
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadpilot", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=ignore,
        )
        children.append(proc)
        return proc

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in children:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
