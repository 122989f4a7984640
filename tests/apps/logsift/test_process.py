"""The real command: a child process serving an inherited socket and its own port, stopped gracefully by SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for


@contextmanager
def logsift(*args: str, pass_fds: tuple[int, ...] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m loadpilot.apps.logsift <args>` as a child process, killed on the way out if still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadpilot.apps.logsift", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _healthy(url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, f"logsift exited with {proc.returncode}"
    try:
        return httpx.get(f"{url}/healthz", timeout=1).text == "ok\n"
    except httpx.HTTPError:
        return False


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        pass
    return False


def _in_flight(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("http_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no http_requests_in_flight in /metrics")


def test_serves_an_inherited_socket_and_a_port_and_stops_gracefully_on_sigterm() -> None:
    inherited = socket.socket()
    inherited.bind(("127.0.0.1", 0))
    inherited.listen()
    port = free_port()
    fd_url = f"http://127.0.0.1:{inherited.getsockname()[1]}"
    port_url = f"http://127.0.0.1:{port}"
    with (
        inherited,
        logsift(
            "--fd", str(inherited.fileno()), "--port", str(port), "--io-ms", "2500", pass_fds=(inherited.fileno(),)
        ) as proc,
    ):
        assert wait_for(lambda: _healthy(port_url, proc), timeout=30), "logsift did not answer on --port"
        assert _healthy(fd_url, proc), "logsift did not answer on the inherited socket"

        slow: dict[str, httpx.Response] = {}

        def post() -> None:
            slow["response"] = httpx.post(
                f"{fd_url}/api/analyze", content=b"slow request 1\nslow request 2", timeout=30
            )

        poster = threading.Thread(target=post)
        poster.start()
        assert wait_for(lambda: _in_flight(port_url) == 1, timeout=10)
        proc.send_signal(signal.SIGTERM)
        # It stops accepting at once, while the slow request is still being served...
        assert wait_for(lambda: _refused(port_url), timeout=2), "still accepting after SIGTERM"
        assert "response" not in slow
        # ...which then completes, and the worker exits 0.
        poster.join(timeout=30)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert slow["response"].status_code == 200
    assert slow["response"].json()["templates"][0]["count"] == 2


def test_two_workers_on_one_database_add_their_counts_up(tmp_path: Path) -> None:
    db = str(tmp_path / "counts.sqlite")
    ports = [free_port(), free_port()]
    with logsift("--port", str(ports[0]), "--db", db) as one, logsift("--port", str(ports[1]), "--db", db) as two:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url, proc in zip(urls, (one, two), strict=True):
            assert wait_for(lambda url=url, proc=proc: _healthy(url, proc), timeout=30)
        for url in urls:
            assert httpx.post(f"{url}/api/analyze", content=b"job 1 done\njob 2 done").status_code == 200
        templates = httpx.get(f"{urls[0]}/api/templates").json()["templates"]
        one.terminate()
        two.terminate()
        assert (one.wait(timeout=30), two.wait(timeout=30)) == (0, 0)
    assert [(t["template"], t["count"]) for t in templates] == [("job <NUM> done", 4)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--port P"),
        (("--fd", "0"), "not an open socket"),
        (("--port", "-1"), "at least 0"),
        (("--port", "1", "--concurrency", "0"), "at least 1"),
    ],
)
def test_usage_errors_exit_2_saying_why(args: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadpilot.apps.logsift", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert result.returncode == 2 and message in result.stderr.decode()


def test_a_port_in_use_exits_1_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "loadpilot.apps.logsift", "--port", str(port)], capture_output=True, timeout=30
        )
    assert result.returncode == 1 and f"127.0.0.1:{port}" in result.stderr.decode()
