"""Real HTTP servers for the HTTP load generator's tests and benchmark: a stdlib test server, and a static nginx.

The test server runs in its own process (`python -m tests.loadgen.http_servers PORT`), so its threads never
compete with the generator for the GIL. Its routes:

- `/` 200 `ok`; `/sleep/MS` waits MS milliseconds first; `/status/CODE` answers CODE.
- `/chunked` a chunked body (with a trailer); `/close` answers with `Connection: close`; `/http10` an HTTP/1.0
  answer without Content-Length (the body ends when the connection closes); `/drop` closes without answering.
- `/echo` reads the request body and answers its length.
- `/_stats` what it saw so far, as JSON: `arrivals` (CLOCK_MONOTONIC seconds of every request but /_stats),
  `bodies` (body lengths), `connections` (connections accepted).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
NGINX = "/usr/sbin/nginx"


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.bodies: list[int] = []
        self.connections = 0


STATS = _Stats()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # head and body go in two writes
        with STATS.lock:
            STATS.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        path = self.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/_stats":
            with STATS.lock:
                data = {"arrivals": STATS.arrivals, "bodies": STATS.bodies, "connections": STATS.connections}
                self._answer(200, json.dumps(data).encode())
            return
        with STATS.lock:
            STATS.arrivals.append(time.monotonic())
            STATS.bodies.append(len(body))
        if path.startswith("/sleep/"):
            time.sleep(int(path.rsplit("/", 1)[1]) / 1000)
            self._answer(200, b"slept\n")
        elif path.startswith("/status/"):
            self._answer(int(path.rsplit("/", 1)[1]), b"as you asked\n")
        elif path == "/echo":
            self._answer(200, f"{len(body)}\n".encode())
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for piece in (b"hello ", b"chunked ", b"x" * 5000, b" world\n"):
                    self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif path == "/close":
            self._answer(200, b"bye\n", close=True)
        elif path == "/http10":
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * 3000)
            self.close_connection = True
        elif path == "/drop":
            self.close_connection = True
        else:
            self._answer(200, b"ok\n")

    def _answer(self, status: int, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def serve(port: int) -> None:
    """Serve the test routes on 127.0.0.1:port until killed."""
    _Server(("127.0.0.1", port), _Handler).serve_forever()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_accepting(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not accept connections on port {port} in {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_server() -> Iterator[str]:
    """The test server in a child process; yields its base URL (http://127.0.0.1:PORT)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.loadgen.http_servers", str(port)], cwd=ROOT, stdin=subprocess.DEVNULL
    )
    try:
        _wait_accepting(port, proc, "the test server")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def stats(base_url: str) -> dict[str, Any]:
    """What the test server saw so far (see the module's docstring)."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/_stats")
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


@contextmanager
def running_nginx(workdir: Path, file_bytes: int = 612, keepalive_requests: int = 1000) -> Iterator[str]:
    """nginx (one worker process) serving a static file; yields the file's URL. `/503` answers 503.

    `file_bytes` is the file's size (612: nginx's own index.html); `keepalive_requests` is how many requests a
    connection serves before nginx closes it (its default, 1000).
    """
    www = workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_bytes((b"<p>loadpilot static file</p>\n" * (file_bytes // 29 + 1))[:file_bytes])
    (workdir / "tmp").mkdir(exist_ok=True)
    port = free_port()
    user = []
    if os.geteuid() == 0:  # workers would run as nobody, who cannot read a private temporary directory
        user = [f"user {pwd.getpwuid(os.getuid()).pw_name};"]
    conf = workdir / "nginx.conf"
    conf.write_text(
        "\n".join(
            [
                *user,
                "worker_processes 1;",
                f"pid {workdir / 'nginx.pid'};",
                f"error_log {workdir / 'error.log'} warn;",
                "events { worker_connections 4096; }",
                "http {",
                "    access_log off;",
                *[
                    f"    {kind}_temp_path {workdir / 'tmp' / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                ],
                f"    keepalive_requests {keepalive_requests};",
                "    server {",
                f"        listen 127.0.0.1:{port} backlog=4096;",
                f"        root {www};",
                "        location = /503 { return 503; }",
                "    }",
                "}",
            ]
        )
        + "\n"
    )
    with (workdir / "nginx.out").open("ab") as log:
        proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait_accepting(port, proc, "nginx")
        yield f"http://127.0.0.1:{port}/index.html"
    finally:
        _stop(proc)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
