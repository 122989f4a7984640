"""Throwaway, real Redis, etcd and ZooKeeper servers for the coordination tests and benchmarks (Debian's
redis-server, etcd-server and zookeeper), each on free 127.0.0.1 ports in a temporary directory, stopped and removed
afterwards; and a TCP forwarder that can cut one client off from its server, as a network would."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


ZOOKEEPER_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/zookeeper.jar")  # Debian's, then others
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"  # ZooKeeper's warnings into its log, when installed
ZOOKEEPER_TICK_MS = 500  # sessions may last 2 to 20 ticks: the tests' 2 s member timeout is within


def _zookeeper_classpath() -> str:
    """Debian's zookeeper.jar names its dependencies in its manifest: it is the whole class path."""
    jar = next((j for j in ZOOKEEPER_JARS if Path(j).exists()), None)
    if jar is None:
        raise ServerUnavailable(f"none of {', '.join(ZOOKEEPER_JARS)} exists: install Debian's zookeeper")
    return f"{jar}:{SLF4J_SIMPLE}" if Path(SLF4J_SIMPLE).exists() else jar


def _wait_zookeeper(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server serves sessions: `srvr` then reports its mode (listening, and even `ruok`, come first,
    and the sessions opened before are dropped)."""
    _wait_listening(port, proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    answer = b""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"srvr")
                answer = s.recv(4096)
        except OSError:
            answer = b""
        if b"Mode: standalone" in answer:
            return
        time.sleep(0.05)
    proc.kill()
    raise ServerUnavailable(f"ZooKeeper on port {port} was not serving within {START_TIMEOUT_S:g} s ({answer!r})")


@contextmanager
def running_zookeeper() -> Iterator[str]:
    """A fresh standalone ZooKeeper (Debian's jars, a JVM of its own); yields its zookeeper:// URL."""
    java = _binary("java", "default-jre-headless")
    classpath = _zookeeper_classpath()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="loadpilot-zookeeper-") as tmp:
        conf, log = Path(tmp) / "zoo.cfg", Path(tmp) / "zookeeper.log"
        conf.write_text(
            "\n".join(
                [
                    f"tickTime={ZOOKEEPER_TICK_MS}",
                    f"dataDir={tmp}/data",
                    f"clientPort={port}",
                    "clientPortAddress=127.0.0.1",
                    "maxClientCnxns=0",
                    "admin.enableServer=false",  # its HTTP admin server would take port 8080
                    "4lw.commands.whitelist=srvr",
                    "",
                ]
            )
        )
        args = [
            java,
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # starts sooner; a test server needs no peak speed
            "-Dzookeeper.forceSync=no",  # no fsync per write: the data directory is thrown away
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            classpath,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(conf),
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            _wait_zookeeper(port, proc, log)
            yield f"zookeeper://127.0.0.1:{port}"
        finally:
            _stop(proc)


class CutOff:
    """A TCP forwarder from a free 127.0.0.1 port to a server's port whose traffic can be held (`cut`), as if the
    network between a client and its server were cut, and let through again (`restore`): nothing is closed or
    refused meanwhile, bytes (and closes) wait until the link is back, so each side only sees silence."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, name="cutoff-accept", daemon=True)]
        self._threads[0].start()

    def url(self, scheme: str) -> str:
        """The URL a client uses to reach the server through this forwarder."""
        return f"{scheme}://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Hold all traffic from now on."""
        self._up.clear()

    def restore(self) -> None:
        """Let the held traffic, and what follows, through."""
        self._up.set()

    def _wait_up(self) -> bool:
        """Wait while the link is cut; False once the forwarder stops."""
        while not self._up.wait(0.1):
            if self._stopped.is_set():
                return False
        return not self._stopped.is_set()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._start(self._connect, client)

    def _start(self, target: Callable[..., None], *args: socket.socket) -> None:
        thread = threading.Thread(target=target, args=args, name="cutoff", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _connect(self, client: socket.socket) -> None:
        self._sockets.append(client)
        if not self._wait_up():
            return
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5.0)
        except OSError:
            client.close()
            return
        self._sockets.append(server)
        self._start(self._pump, server, client)
        self._pump(client, server)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not self._wait_up():
                return
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Stop forwarding and close every connection."""
        self._stopped.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
