"""The process collector on real child processes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from loadpilot.sense.collectors.process import ProcessCollector, ProcessOptions


@pytest.fixture
def marker() -> str:
    return f"lp-test-{uuid.uuid4().hex[:8]}"


def spawn(code: str, marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, marker])


@pytest.fixture
def burner(marker: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn("import time\nend = time.time() + 30\nwhile time.time() < end: pass", marker)
    yield proc
    proc.kill()
    proc.wait()


def by_metric(collector: ProcessCollector) -> dict[tuple[str, str], float]:
    return {(s.resource_id, s.metric): s.value for s in collector.collect(time.time()).samples}


def test_cpu_is_a_fraction_of_one_core(burner: subprocess.Popen[bytes], marker: str) -> None:
    sleeper = spawn("import time; time.sleep(30)", marker)
    try:
        c = ProcessCollector(ProcessOptions(name="t", pattern=marker), host="h1")
        first = by_metric(c)
        assert not any(m == "cpu.util" for _, m in first)  # the first reading primes
        time.sleep(1.0)
        got = by_metric(c)
    finally:
        sleeper.kill()
        sleeper.wait()
    busy_id, idle_id = f"h1/proc/t/{burner.pid}", f"h1/proc/t/{sleeper.pid}"
    assert got[(busy_id, "cpu.util")] == pytest.approx(1.0, abs=0.2)
    assert got[(idle_id, "cpu.util")] < 0.05
    assert got[(busy_id, "mem.rss_bytes")] > 1_000_000


def test_labels_and_resources(burner: subprocess.Popen[bytes], marker: str) -> None:
    c = ProcessCollector(ProcessOptions(name="web", pattern=marker, labels={"pool": "p1"}), host="h1")
    [res] = c.collect(time.time()).resources
    assert res.id == f"h1/proc/web/{burner.pid}" and res.kind == "process"
    assert res.labels == {
        "host": "h1",
        "group": "web",
        "pid": str(burner.pid),
        "name": res.labels["name"],
        "pool": "p1",
    }


def test_processes_come_and_go(marker: str) -> None:
    c = ProcessCollector(ProcessOptions(name="t", pattern=marker), host="h1")
    assert c.collect(time.time()).resources == []
    proc = spawn("import time; time.sleep(30)", marker)
    try:
        assert [r.labels["pid"] for r in c.collect(time.time()).resources] == [str(proc.pid)]
    finally:
        proc.kill()
        proc.wait()
    assert c.collect(time.time()).resources == []


def test_pid_file(tmp_path: Path, burner: subprocess.Popen[bytes]) -> None:
    pid_file = tmp_path / "x.pid"
    c = ProcessCollector(ProcessOptions(name="t", pid_file=str(pid_file)), host="h1")
    assert c.collect(time.time()).samples == []  # no file yet: nothing, no error
    pid_file.write_text(f"{burner.pid}\n")
    assert [r.labels["pid"] for r in c.collect(time.time()).resources] == [str(burner.pid)]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "t"}, "pattern"),
        ({"name": "t", "pattern": "x", "pid_file": "/x"}, "pattern"),
        ({"name": "t", "pattern": "("}, "regular expression"),
        ({"name": "bad name", "pattern": "x"}, "name"),
        ({"name": "t", "pattern": "x", "match": "exe"}, "match"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ProcessOptions.model_validate(options)
