"""`loadpilot loadgen cpu` from a shell: signals end every worker, a killed parent leaves no orphans, --memory
holds memory, bad arguments exit 2 naming the option."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
from typer.testing import CliRunner

from loadpilot.cli import app
from loadpilot.cli_loadgen import parse_size
from tests.helpers import wait_for

CORES = psutil.cpu_count() or 1


def _start(*args: str) -> subprocess.Popen[str]:
    """The generator in its own process group, as a shell would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "loadpilot", "loadgen", "cpu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _workers(proc: subprocess.Popen[str], count: int = CORES) -> list[psutil.Process]:
    """The generator's worker processes, once all have started."""
    parent = psutil.Process(proc.pid)
    assert wait_for(lambda: len(parent.children()) == count, timeout=15), "the workers did not start"
    return parent.children()


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, waiting for whoever adopted it to reap it
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "Ctrl-C (SIGINT to the group)", "SIGTERM to the group"],
)
def test_a_signal_stops_every_worker_and_prints_the_summary(sig: signal.Signals, group: bool) -> None:
    proc = _start("--target", "30")
    try:
        workers = _workers(proc)
        time.sleep(1.5)  # at least one per-second reading
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert all(_gone(w) for w in workers)
    assert "loadgen cpu: total CPU in [29, 31] %" in out
    assert re.search(r"\d+\.\d s  total +[\d.]+ %  own +[\d.]+ %  duty [\d.]+  (in band|above|below)", out), out
    assert "summary of" in out and "MAE from 30 %" in out


def test_a_killed_parent_leaves_no_worker_behind() -> None:
    proc = _start("--target", "30")
    try:
        workers = _workers(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert wait_for(lambda: all(_gone(w) for w in workers), timeout=1.0), "orphaned workers"
    finally:
        proc.kill()
        for w in workers:
            if not _gone(w):
                w.kill()


def test_memory_is_held_resident_and_json_prints_one_document() -> None:
    size = 256 * 2**20
    proc = _start("--target", "10", "--cores", "1", "--memory", "256M", "--json")
    try:
        _workers(proc, 1)
        parent = psutil.Process(proc.pid)
        assert wait_for(lambda: parent.memory_info().rss >= size, timeout=10), parent.memory_info()
        time.sleep(1.2)
        assert size <= parent.memory_info().rss <= size + 150 * 2**20
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    document = json.loads(out)
    assert document["ok"] and document["memory_bytes"] == size and document["workers"] == 1
    assert document["band"] == {"low": pytest.approx(0.09), "high": pytest.approx(0.11)}
    assert document["series"] and {"t", "total", "own", "duty", "in_band"} <= set(document["series"][0])
    assert {"mean", "p5", "p95", "mae_settled", "in_band", "settling_s"} <= set(document["summary"])


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ([], "--target"),
        (["--low", "60", "--high", "40"], "--low"),
        (["--low", "-5", "--high", "10"], "--low"),
        (["--low", "40", "--high", "101"], "--high"),
        (["--low", "40"], "--high"),
        (["--target", "50", "--low", "40"], "--target"),
        (["--target", "150"], "--target"),
        (["--target", "50", "--cores", "0"], "--cores"),
        (["--target", "50", "--cores", str(CORES + 1)], "--cores"),
        (["--target", "50", "--duration", "0"], "--duration"),
        (["--target", "50", "--memory", "12X"], "--memory"),
        (["--target", "50", "--memory", "1000000T"], "--memory"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(args: list[str], option: str) -> None:
    result = CliRunner().invoke(app, ["loadgen", "cpu", *args])
    assert result.exit_code == 2, result.output
    assert option in result.output


def test_sizes() -> None:
    assert parse_size("1048576") == 2**20
    assert parse_size("512M") == 512 * 2**20
    assert parse_size("1G") == parse_size("1GiB") == parse_size("1gb") == 2**30
    assert parse_size("1.5k") == 1536
    assert parse_size("64 MiB") == 64 * 2**20
    for bad in ("", "M", "-1G", "1X", "1.2.3G"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
