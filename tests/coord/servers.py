"""Throwaway, real Redis and etcd servers for the coordination tests and benchmarks (Debian's redis-server and
etcd-server), each on free 127.0.0.1 ports in a temporary directory, stopped and removed afterwards."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 20.0


class ServerUnavailable(RuntimeError):
    """The server's program is not installed, or it did not start."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"exited with code {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    proc.kill()
    raise ServerUnavailable(f"nothing listened on port {port} within {START_TIMEOUT_S:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise ServerUnavailable(f"{name} not found: install Debian's {package} (`make test` does)")
    return path


@contextmanager
def redis_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A fresh Redis server without persistence; yields its redis:// URL and its process (to pause or kill)."""
    binary = _binary("redis-server", "redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="loadpilot-redis-") as tmp:
        log = Path(tmp) / "redis.log"
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(log, "wb") as out:
            proc = subprocess.Popen([*args, "--dir", tmp], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_listening(port, proc, log)
            yield f"redis://127.0.0.1:{port}", proc
        finally:
            proc.send_signal(signal.SIGCONT)
            _stop(proc)


@contextmanager
def running_redis() -> Iterator[str]:
    """A fresh Redis server without persistence; yields its redis:// URL."""
    with redis_process() as (url, _):
        yield url


@contextmanager
def running_etcd() -> Iterator[str]:
    """A fresh single-node etcd; yields its etcd3+http:// URL."""
    binary = _binary("etcd", "etcd-server")
    client, peer = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="loadpilot-etcd-") as tmp:
        log = Path(tmp) / "etcd.log"
        args = [
            binary,
            "--name=test",
            f"--data-dir={tmp}/data",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=test=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_listening(client, proc, log)
            yield f"etcd3+http://127.0.0.1:{client}"
        finally:
            _stop(proc)
