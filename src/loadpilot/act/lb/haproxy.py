"""A managed HAProxy in front of the pool: workers move in and out of fixed server slots through the runtime API.

The config declares one backend with `slots` servers (a `server-template`, one slot per possible worker: the
pool's max size), all in maintenance. update() fills slots over the stats socket (`set server ... addr/weight/
state`), so HAProxy never reloads. A worker keeps its slot for as long as it is routed.

Removing a worker sets its slot to `drain`: no new requests, and requests in flight finish on their open
connections. At the next update() drained slots go to `maint` and become free for new workers. When one update
replaces workers and every other slot is taken, a leaving worker's slot is handed to a new worker at once
instead of draining (its requests in flight still finish: an open connection keeps its address), so `slots` =
the pool's max size is enough. Measured here, `drain` and `maint` both let a request in flight complete.

Slots carry no `check`: measured on HAProxy 2.6, retries with redispatch alone served a stream of GETs with no
failure and no added latency when a worker was killed (a refused connect is redispatched at once), while with
`check inter 500 fall 1` one request in flight when the check marked the slot down waited a 1 s turn-around.
A slot set `ready` serves at once either way (leaving maint starts it UP), and the supervisor already checks
each worker's /healthz, so a second opinion only adds traffic and a way for the two to disagree.

By default HAProxy closes its connection to a worker after each response (`option http-server-close`): a worker
that is told to stop then has no idle keep-alive connection from HAProxy holding its graceful exit (measured:
with idle connections kept, a drained worker's exit waited for HAProxy to purge them, over 4 s).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from loadpilot.act.lb.base import Route
from loadpilot.act.lb.managed import (
    check_front_host,
    check_routes,
    check_workdir,
    ensure_port_free,
    find_binary,
    host_port,
    pick_free_port,
    process_from_pidfile,
    socket_path,
    stop_process_tree,
    tail,
    wait_accepting,
)
from loadpilot.errors import PermanentError, TemporaryError

BACKEND = "pool"
SLOT = "slot"  # slots are slot1..slotN
METHODS = ("leastconn", "roundrobin")
NON_IDEMPOTENT = "{ method POST PATCH LOCK }"  # what nginx also never retries once sent
NOT_READY = 0x01 | 0x02 | 0x20 | 0x08 | 0x10  # srv_admin_state: forced/inherited/resolution maint, drain


class HAProxyBalancer:
    """HAProxy as a child process; workers fill `server-template` slots through the runtime API, no reloads."""

    kind = "haproxy"

    def __init__(
        self,
        host: str,
        port: int,
        workdir: Path | str,
        *,
        slots: int,
        binary: str = "haproxy",
        retries: int = 3,
        method: str = "leastconn",
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 60.0,
        retry_non_idempotent: bool = False,
        server_keepalive: bool = False,
        drain_timeout_s: float = 30.0,
        start_timeout_s: float = 10.0,
    ) -> None:
        """Check the settings and name the files; nothing runs until start(). Port 0 picks a free port at start.

        `slots` is the most workers that can be routed at once (the pool's max size). A failed request is
        retried up to `retries` times, on another worker each time; POST, PATCH and LOCK only when the
        connection failed, unless `retry_non_idempotent`. `server_keepalive` keeps idle connections to workers
        (faster, but a stopping worker then waits for HAProxy to close them).
        """
        problems = []
        if not isinstance(slots, int) or not 1 <= slots <= 10000:
            problems.append(f"slots {slots!r} must be 1..10000 (the pool's max size)")
        if method not in METHODS:
            problems.append(f"method {method!r} is not one of {list(METHODS)}")
        if not isinstance(retries, int) or retries < 0:
            problems.append(f"retries {retries!r} must be an integer >= 0")
        for name, seconds in [("connect_timeout_s", connect_timeout_s), ("read_timeout_s", read_timeout_s),
                              ("drain_timeout_s", drain_timeout_s), ("start_timeout_s", start_timeout_s)]:  # fmt: skip
            if not seconds > 0:
                problems.append(f"{name} {seconds!r} must be > 0")
        if not 0 <= port <= 65535:
            problems.append(f"front port {port} is not in 0..65535")
        if problems:
            raise PermanentError("haproxy balancer: " + "; ".join(problems))
        self._host = check_front_host(host)
        self._port = port
        self._workdir = check_workdir(Path(workdir))
        self._binary = binary
        self._slots = slots
        self._settings = (retries, method, _ms(connect_timeout_s), _ms(read_timeout_s), _ms(drain_timeout_s))
        self._retry_non_idempotent = retry_non_idempotent
        self._server_keepalive = server_keepalive
        self._drain_timeout_s = drain_timeout_s
        self._start_timeout_s = start_timeout_s
        self._conf = self._workdir / "haproxy.cfg"
        self._socket = socket_path(self._workdir, "admin.sock")
        self._pidfile = self._workdir / "haproxy.pid"
        self._log = self._workdir / "haproxy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._routes: list[Route] = []  # the last routes asked for, re-applied by start()
        self._in_slot: dict[int, Route] = {}  # slot -> the worker routed there (state ready)
        self._draining: set[int] = set()  # slots set to drain by the last update
        self._lock = threading.Lock()

    @property
    def front(self) -> tuple[str, int]:
        """The (host, port) clients connect to (the chosen port once started, when 0 was asked for)."""
        return (self._host, self._port)

    @property
    def pid(self) -> int | None:
        """HAProxy's process id while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start HAProxy with every slot in maintenance, then route the last routes; idempotent.

        An HAProxy left running from this work directory by an earlier loadpilot (its pid file) is stopped first.
        """
        with self._lock:
            if self.pid is not None:
                return
            binary = find_binary(self._binary, "haproxy")
            stale = process_from_pidfile(self._pidfile, "haproxy", str(self._conf))
            if stale is not None:
                stop_process_tree(stale, signal.SIGUSR1, self._drain_timeout_s)
            if self._port == 0:
                self._port = pick_free_port(self._host)
            ensure_port_free(self._host, self._port)
            self._conf.write_text(self._render())
            self._check_config(binary)
            self._socket.unlink(missing_ok=True)  # an earlier run's socket file would refuse connections
            log = self._log.open("ab")
            try:
                self._proc = subprocess.Popen(
                    [binary, "-db", "-f", str(self._conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # the supervisor, not the terminal, decides when HAProxy stops
                )
            finally:
                log.close()
            self._pidfile.write_text(f"{self._proc.pid}\n")
            self._in_slot, self._draining = {}, set()
            try:
                wait_accepting(self._proc, "haproxy", self._host, self._port, self._start_timeout_s, self._log)
                self._wait_runtime_api()
                self._apply(self._routes)
            except BaseException:
                self._stop_locked()
                raise

    def update(self, routes: Sequence[Route]) -> None:
        """Route new requests to exactly `routes` through the runtime API; removed workers drain.

        More routes than slots raises PermanentError before anything changes.
        """
        checked = check_routes(routes, ip_only=True)
        if len(checked) > self._slots:
            raise PermanentError(
                f"haproxy has {self._slots} server slots (the pool's max size) but {len(checked)} workers were "
                "routed; raise the pool's max size (slots) or route fewer workers"
            )
        with self._lock:
            if self.pid is None:
                raise TemporaryError("haproxy is not running; call start() before update()")
            self._apply(checked)
            self._routes = checked

    def routes(self) -> list[Route]:
        """The slots HAProxy reports in admin state ready (`show servers state`), with their address and weight.

        The worker id and pid come from loadpilot's slot map when the slot's address is the one it set, else
        the worker id is the slot's name.
        """
        with self._lock:
            if self.pid is None:
                return []
            text = self._command(f"show servers state {BACKEND}")
            in_slot = dict(self._in_slot)
        lines = [line for line in text.splitlines() if line.strip()]
        header = next((line for line in lines if line.startswith("# be_id")), None)
        if header is None:
            raise TemporaryError(f"haproxy answered 'show servers state' unexpectedly: {text[:200]!r}")
        names = header[2:].split()
        result = []
        for line in lines[lines.index(header) + 1 :]:
            row = dict(zip(names, line.split(), strict=False))
            if int(row["srv_admin_state"]) & NOT_READY:
                continue
            slot = int(row["srv_name"].removeprefix(SLOT))
            host, port, weight = row["srv_addr"], int(row["srv_port"]), int(row["srv_uweight"])
            mine = in_slot.get(slot)
            if mine is not None and (mine.host, mine.port) == (host, port):
                result.append(Route(mine.worker_id, host, port, weight, mine.pid))
            else:
                result.append(Route(row["srv_name"], host, port, weight))
        return result

    def stop(self) -> None:
        """Stop HAProxy: soft stop (requests in flight finish), SIGKILL after drain_timeout_s; idempotent."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        self._in_slot, self._draining = {}, set()
        if proc is None:
            return
        if proc.poll() is None:
            try:
                stop_process_tree(psutil.Process(proc.pid), signal.SIGUSR1, self._drain_timeout_s, popen=proc)
            except psutil.NoSuchProcess:
                proc.wait()
        self._pidfile.unlink(missing_ok=True)

    def _apply(self, routes: Sequence[Route]) -> None:
        """Move the slots from what they hold to `routes`: last update's drains to maint, new ones in, gone ones out."""
        for slot in sorted(self._draining):
            self._set_state(slot, "maint")
            self._draining.discard(slot)
        wanted = {route.worker_id: route for route in routes}
        kept = {slot: route for slot, route in self._in_slot.items() if route.worker_id in wanted}
        leaving = sorted(set(self._in_slot) - set(kept))
        slot_of = {route.worker_id: slot for slot, route in kept.items()}
        free = [slot for slot in range(1, self._slots + 1) if slot not in self._in_slot] + leaving
        for route in routes:  # new workers first, so the pool never shrinks below both sets
            if route.worker_id in slot_of:
                slot = slot_of[route.worker_id]
            else:
                slot = free.pop(0)
                if slot in leaving:
                    leaving.remove(slot)
                    del self._in_slot[slot]
            old = self._in_slot.get(slot)
            if old is None or (old.host, old.port) != (route.host, route.port):
                self._command_ok(f"set server {BACKEND}/{SLOT}{slot} addr {route.host} port {route.port}")
            if old is None or old.weight != route.weight:
                self._command_ok(f"set server {BACKEND}/{SLOT}{slot} weight {route.weight}")
            if old is None:
                self._set_state(slot, "ready")
            self._in_slot[slot] = route
        for slot in leaving:
            self._set_state(slot, "drain")
            del self._in_slot[slot]
            self._draining.add(slot)

    def _wait_runtime_api(self) -> None:
        """Wait until the stats socket answers; HAProxy may accept on the front a moment before it does."""
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            try:
                self._command("show info")
                return
            except TemporaryError:
                if time.monotonic() > deadline or self.pid is None:
                    raise
                time.sleep(0.01)

    def _set_state(self, slot: int, state: str) -> None:
        self._command_ok(f"set server {BACKEND}/{SLOT}{slot} state {state}")

    def _command_ok(self, command: str) -> None:
        """Run a `set server` command; PermanentError when HAProxy answers anything but success."""
        answer = self._command(command)
        if answer and "changed from" not in answer and "no need to change" not in answer:
            raise PermanentError(f"haproxy refused {command!r}: {answer}")

    def _command(self, command: str) -> str:
        """Send one command over the stats socket and return HAProxy's answer (the socket closes after it)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(5.0)
                conn.connect(str(self._socket))
                conn.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise TemporaryError(f"haproxy's runtime API at {self._socket} did not answer {command!r}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace").strip()

    def _check_config(self, binary: str) -> None:
        """Run `haproxy -c` so a bad setting is reported with HAProxy's own words, not as an exit code."""
        done = subprocess.run(
            [binary, "-c", "-f", str(self._conf)], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            alerts = [line for line in (done.stdout + done.stderr).splitlines() if "ALERT" in line]
            raise PermanentError(f"haproxy rejected its configuration: {'; '.join(alerts) or tail(self._conf)}")

    def _render(self) -> str:
        """The complete haproxy.cfg: the stats socket inside the work directory, one frontend, one slotted backend."""
        retries, method, connect_ms, read_ms, drain_ms = self._settings
        lines = [
            "# Written by loadpilot; workers are set through the runtime API, not here.",
            "global",
            f"    stats socket {self._socket} mode 600 level admin",
            "    stats timeout 10s",
            f"    hard-stop-after {drain_ms}ms",
            "defaults",
            "    mode http",
            f"    timeout connect {connect_ms}ms",
            f"    timeout client {read_ms}ms",
            f"    timeout server {read_ms}ms",
            "    timeout http-request 10s",
            f"    retries {retries}",
            "    option redispatch 1  # every retry goes to another worker",
            "    retry-on conn-failure empty-response response-timeout",
            *([] if self._server_keepalive else ["    option http-server-close"]),
            "    option forwardfor",
            "frontend front",
            f"    bind {host_port(self._host, self._port)}",
            f"    default_backend {BACKEND}",
            f"backend {BACKEND}",
            f"    balance {method}",
            *([] if self._retry_non_idempotent else [f"    http-request disable-l7-retry if {NON_IDEMPOTENT}"]),
            f"    server-template {SLOT} 1-{self._slots} 127.0.0.1:9 disabled",
        ]
        return "\n".join(lines) + "\n"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
