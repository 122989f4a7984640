"""The pool's files: one supervisor per pool, atomic state, desired size from any shell."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadpilot.act.pool.state import Desired, PoolPaths, SupervisorLock, read_desired, supervisor_pid, write_desired
from loadpilot.errors import PermanentError


def test_a_second_supervisor_is_refused_and_the_lock_dies_with_its_holder(tmp_path) -> None:
    paths = PoolPaths.of(tmp_path, "web")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time\nfrom loadpilot.act.pool.state import *\n"
            f"SupervisorLock(PoolPaths.of(__import__('pathlib').Path({str(tmp_path)!r}), 'web')).acquire()\n"
            "print('locked', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        assert supervisor_pid(paths) == holder.pid
        with pytest.raises(PermanentError, match=f"already supervised \\(pid {holder.pid}\\)"):
            SupervisorLock(paths).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert supervisor_pid(paths) is None  # a killed holder leaves a pid in the file, but no lock
    lock = SupervisorLock(paths)
    lock.acquire()
    assert supervisor_pid(paths) == os.getpid()
    lock.release()


def test_desired_round_trips_and_a_torn_file_reads_as_none(tmp_path) -> None:
    paths = PoolPaths.of(tmp_path, "web")
    assert read_desired(paths) is None
    write_desired(paths, Desired(size=3, generation=2, epoch=7))
    got = read_desired(paths)
    assert got is not None and (got.size, got.generation, got.epoch) == (3, 2, 7)
    paths.desired.write_text('{"size": 3, "gener')
    assert read_desired(paths) is None
