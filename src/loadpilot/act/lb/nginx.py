"""A managed nginx in front of the pool: loadpilot writes its config, runs it as a child, reloads it on change.

Open-source nginx has no API to list or change upstream servers at run time (that is nginx Plus), so every change
is a new config file: written atomically, checked with `nginx -t`, then applied with SIGHUP. On a reload the
master starts new workers with the new upstream and, about 100 ms later, tells the old workers to quit
gracefully: they stop accepting, close idle keep-alive connections (client and upstream), and finish the
requests they are serving. update() returns only once every old worker has been told to quit, so when it
returns no process that knows the old upstream accepts new connections, and the next update() can follow at
once (a SIGHUP during the master's 100 ms pause is not lost either; it is handled right after).

routes() parses the live config file, which only ever holds what nginx accepted: a rejected or failed change
puts the last good file back.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import signal
import subprocess
import sys
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
    kill_leftovers,
    pick_free_port,
    process_from_pidfile,
    stop_process_tree,
    tail,
    wait_accepting,
)
from loadpilot.errors import PermanentError, TemporaryError

UPSTREAM = "loadpilot_pool"
METHODS = {"least_conn": "least_conn;", "round_robin": ""}
ROUTE_LINE = re.compile(
    r"^\s*server\s+(?:\[(?P<ip6>[^\]]+)\]|(?P<host>[^\s:]+)):(?P<port>\d+)\s+weight=(?P<weight>\d+)\b.*"
    r"#\s*loadpilot-route\s+id=(?P<id>\S+)\s+pid=(?P<pid>\d+)\s*$"
)
ROUTE_NOTE = re.compile(r"#\s*loadpilot-route\s.*$", re.MULTILINE)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
RELOAD_TIMEOUT_S = 10.0


class NginxBalancer:
    """nginx as a child process; workers are `server` lines in one upstream, changed by reloading."""

    kind = "nginx"

    def __init__(
        self,
        host: str,
        port: int,
        workdir: Path | str,
        *,
        binary: str = "nginx",
        max_fails: int = 0,
        fail_timeout_s: float = 10,
        retries: int = 3,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 60.0,
        method: str = "least_conn",
        keepalive: int = 32,
        worker_processes: int | str = "auto",
        retry_non_idempotent: bool = False,
        drain_timeout_s: float = 30.0,
        start_timeout_s: float = 10.0,
    ) -> None:
        """Check the settings and name the files; nothing runs until start(). Port 0 picks a free port at start.

        `retries` is how many other workers a failed request may be tried on (nginx's tries = retries + 1);
        POST, PATCH and LOCK are retried only when the connection failed before they were sent, unless
        `retry_non_idempotent`. `max_fails` failures within `fail_timeout_s` bench a worker; 0 (the default) never
        does, as a crashed local worker refuses at once and its replacement serves on the same port at once.
        `drain_timeout_s` bounds how long old workers may finish requests after a reload or at stop() before they
        are cut.
        """
        problems = []
        if method not in METHODS:
            problems.append(f"method {method!r} is not one of {sorted(METHODS)}")
        if not (worker_processes == "auto" or (isinstance(worker_processes, int) and 1 <= worker_processes <= 512)):
            problems.append(f"worker_processes {worker_processes!r} must be 'auto' or 1..512")
        for name, value, low in [("max_fails", max_fails, 0), ("retries", retries, 0), ("keepalive", keepalive, 0)]:
            if not isinstance(value, int) or value < low:
                problems.append(f"{name} {value!r} must be an integer >= {low}")
        timeouts = {"fail_timeout_s": fail_timeout_s, "connect_timeout_s": connect_timeout_s,
                    "read_timeout_s": read_timeout_s, "drain_timeout_s": drain_timeout_s,
                    "start_timeout_s": start_timeout_s}  # fmt: skip
        for name, seconds in timeouts.items():
            if not seconds > 0:
                problems.append(f"{name} {seconds!r} must be > 0")
        if not 0 <= port <= 65535:
            problems.append(f"front port {port} is not in 0..65535")
        if problems:
            raise PermanentError("nginx balancer: " + "; ".join(problems))
        self._host = check_front_host(host)
        self._port = port
        self._workdir = check_workdir(Path(workdir))
        self._binary = binary
        self._settings = {
            "max_fails": max_fails,
            "fail_timeout_s": math.ceil(fail_timeout_s),  # nginx counts it in whole seconds
            "tries": retries + 1,
            "connect_ms": _ms(connect_timeout_s),
            "read_ms": _ms(read_timeout_s),
            "drain_ms": _ms(drain_timeout_s),
            "method": method,
            "keepalive": keepalive,
            "worker_processes": worker_processes,
            "retry_non_idempotent": retry_non_idempotent,
        }
        self._drain_timeout_s = drain_timeout_s
        self._start_timeout_s = start_timeout_s
        self._conf = self._workdir / "nginx.conf"
        self._pidfile = self._workdir / "nginx.pid"
        self._error_log = self._workdir / "error.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._workers: list[psutil.Process] = []  # the master's children at the last start or reload
        self._good = ""  # the config text nginx runs with now
        self._routes: list[Route] = []  # kept across stop() and start()
        self._lock = threading.Lock()

    @property
    def front(self) -> tuple[str, int]:
        """The (host, port) clients connect to (the chosen port once started, when 0 was asked for)."""
        return (self._host, self._port)

    @property
    def pid(self) -> int | None:
        """The nginx master's process id while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start nginx with the last routes (none at first) and wait until it accepts; idempotent.

        An nginx left running from this work directory by an earlier loadpilot (its pid file) is stopped first,
        so a restarted supervisor never runs two.
        """
        with self._lock:
            if self.pid is not None:
                return
            self._stop_locked()  # a master that died may have left workers holding the port
            binary = find_binary(self._binary, "nginx")
            stale = process_from_pidfile(self._pidfile, "nginx", str(self._workdir))
            if stale is not None:
                stop_process_tree(stale, signal.SIGQUIT, self._drain_timeout_s)
            if self._port == 0:
                self._port = pick_free_port(self._host)
            ensure_port_free(self._host, self._port)
            (self._workdir / "tmp").mkdir(exist_ok=True)
            text = self._render(self._routes)
            self._write(text)
            self._test(binary, self._routes)
            out = (self._workdir / "nginx.out").open("ab")
            try:
                self._proc = subprocess.Popen(
                    [*self._base_args(binary), "-g", "daemon off;"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # the supervisor, not the terminal, decides when nginx stops
                )
            finally:
                out.close()
            try:
                wait_accepting(self._proc, "nginx", self._host, self._port, self._start_timeout_s, self._error_log)
                self._workers = psutil.Process(self._proc.pid).children()
            except BaseException:
                self._stop_locked()
                raise
            self._good = text

    def update(self, routes: Sequence[Route]) -> None:
        """Make nginx route new requests to exactly `routes`: render, `nginx -t`, reload; no-op when unchanged.

        When only worker ids or pids change (same servers), the file is rewritten and nginx is not reloaded.

        A config nginx rejects raises PermanentError with nginx's own message, and the last good config stays
        in force (file and process).
        """
        checked = check_routes(routes)
        with self._lock:
            if self.pid is None:
                raise TemporaryError("nginx is not running; call start() before update()")
            text = self._render(checked)
            if text == self._good:
                self._routes = checked
                return
            if without_route_notes(text) == without_route_notes(self._good):
                # Only the notes changed (a worker replaced on the same port): nginx already routes right, and a
                # reload would close connections its old workers just accepted (nginx's graceful shutdown does).
                self._write(text)
                self._good, self._routes = text, checked
                return
            self._write(text)
            try:
                self._test(find_binary(self._binary, "nginx"), checked)
                self._reload()
            except BaseException:
                self._write(self._good)
                raise
            self._good, self._routes = text, checked

    def routes(self) -> list[Route]:
        """The servers in the live config of the running nginx ([] when it does not run).

        Open-source nginx cannot list its upstream servers, so this reads the config file, which holds only
        what the running nginx accepted; pids come from a comment loadpilot writes on each line.
        """
        with self._lock:
            if self.pid is None:
                return []
            try:
                text = self._conf.read_text()
            except OSError as exc:
                raise TemporaryError(f"cannot read nginx's live config {self._conf}: {exc.strerror}") from exc
        return parse_routes(text)

    def stop(self) -> None:
        """Stop nginx gracefully (SIGQUIT: requests in flight finish), SIGKILL after drain_timeout_s; idempotent."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        workers, self._workers = self._workers, []
        self._good = ""
        if proc is None:
            return
        if proc.poll() is None:
            stop_process_tree(psutil.Process(proc.pid), signal.SIGQUIT, self._drain_timeout_s, popen=proc)
        else:  # the master died (killed?): its workers do not notice and would keep serving the old routes
            kill_leftovers(workers)

    def _base_args(self, binary: str) -> list[str]:
        return [binary, "-p", f"{self._workdir}/", "-e", str(self._error_log), "-c", self._conf.name]

    def _write(self, text: str) -> None:
        """Replace the config file atomically, so nginx never reads half of it."""
        candidate = self._workdir / "nginx.conf.candidate"
        candidate.write_text(text)
        os.replace(candidate, self._conf)

    def _test(self, binary: str, routes: Sequence[Route]) -> None:
        """Run `nginx -t` on the config file; PermanentError with nginx's message when it is rejected."""
        try:
            done = subprocess.run(
                [*self._base_args(binary), "-t", "-q"], capture_output=True, text=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TemporaryError("nginx -t did not finish within 30 s (a slow DNS lookup of a route's host?)") from exc
        if done.returncode != 0:
            lines = [line.removeprefix("nginx: ") for line in done.stderr.strip().splitlines()]
            message = "; ".join(line for line in lines if "test failed" not in line) or f"exit {done.returncode}"
            ids = ", ".join(route.worker_id for route in routes) or "none"
            raise PermanentError(
                f"nginx rejected the configuration for routes [{ids}]: {message}; it keeps the previous one"
            )

    def _reload(self) -> None:
        """SIGHUP the master and wait until new workers run and every old one is shutting down (or gone)."""
        assert self._proc is not None
        master = psutil.Process(self._proc.pid)
        before = {child.pid for child in master.children()}
        offset = self._error_log.stat().st_size if self._error_log.exists() else 0
        master.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise TemporaryError(f"nginx exited during a reload:\n{tail(self._error_log)}")
            failure = _new_errors(self._error_log, offset)
            if failure:
                raise PermanentError(f"nginx did not reload; it keeps the previous configuration: {failure}")
            children = master.children()
            fresh = [child for child in children if child.pid not in before]
            if fresh and not any(child.pid in before and not _shutting_down(child) for child in children):
                self._workers = children
                return
            time.sleep(0.005)
        raise TemporaryError(f"nginx did not finish a reload within {RELOAD_TIMEOUT_S:g} s:\n{tail(self._error_log)}")

    def _render(self, routes: Sequence[Route]) -> str:
        return render_config(self._workdir, host_port(self._host, self._port), routes, self._settings)


def without_route_notes(text: str) -> str:
    """nginx.conf without loadpilot's per-server notes (ids, pids): what nginx itself acts on."""
    return ROUTE_NOTE.sub("", text)


def render_config(workdir: Path, listen: str, routes: Sequence[Route], settings: dict[str, object]) -> str:
    """The complete nginx.conf: every path inside `workdir`, one upstream of `routes`, one proxying server.

    With no routes the upstream holds a single server marked `down`, so nginx answers 502 at once ("no live
    upstreams") instead of failing to load.
    """
    s = settings
    limits = f"weight={{w}} max_fails={s['max_fails']} fail_timeout={s['fail_timeout_s']}s"
    servers = [
        f"        server {host_port(r.host, r.port)} {limits.format(w=r.weight)};  "
        f"# loadpilot-route id={r.worker_id} pid={r.pid}"
        for r in sorted(routes, key=lambda r: r.worker_id)  # order-free: the same set renders the same file
    ] or ["        server 127.0.0.1:9 down;  # no routes: answer 502 at once"]
    next_upstream = "error timeout http_502 http_503" + (" non_idempotent" if s["retry_non_idempotent"] else "")
    keepalive = f"        keepalive {s['keepalive']};" if s["keepalive"] else ""
    method = METHODS[str(s["method"])]
    tmp = workdir / "tmp"
    lines = [
        "# Written by loadpilot; changes here are overwritten at the next update.",
        *_user_line(workdir),
        f"worker_processes {s['worker_processes']};",
        f"pid {workdir / 'nginx.pid'};",
        f"error_log {workdir / 'error.log'} notice;",
        f"worker_shutdown_timeout {s['drain_ms']}ms;",
        "events { worker_connections 1024; }",
        "http {",
        "    access_log off;",
        "    server_tokens off;",
        "    client_max_body_size 0;  # like HAProxy: the workers decide what is too big",
        *[f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")],
        f"    upstream {UPSTREAM} {{",
        f"        zone {UPSTREAM} 256k;  # one view of failures and connection counts for all nginx workers",
        *([f"        {method}"] if method else []),
        *servers,
        *([keepalive] if keepalive else []),
        "    }",
        "    server {",
        # deferred (Linux): accept a connection only once its request has arrived, so a reload's graceful
        # shutdown never finds it idle and closes it unanswered.
        f"        listen {listen}{' deferred' if sys.platform.startswith('linux') else ''};",
        "        location / {",
        f"            proxy_pass http://{UPSTREAM};",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $http_host;",
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "            proxy_set_header X-Forwarded-Proto $scheme;",
        f"            proxy_connect_timeout {s['connect_ms']}ms;",
        f"            proxy_send_timeout {s['read_ms']}ms;",
        f"            proxy_read_timeout {s['read_ms']}ms;",
        f"            proxy_next_upstream {next_upstream};",
        f"            proxy_next_upstream_tries {s['tries']};",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def parse_routes(text: str) -> list[Route]:
    """The routes written into an nginx.conf by render_config (the placeholder `down` server is not one)."""
    routes = []
    for line in text.splitlines():
        match = ROUTE_LINE.match(line)
        if match:
            host = match["ip6"] or match["host"]
            routes.append(Route(match["id"], host, int(match["port"]), int(match["weight"]), int(match["pid"])))
    return routes


def _user_line(workdir: Path) -> list[str]:
    """Under root, run nginx's workers as the work directory's owner, so they can use the temp paths inside it."""
    if os.geteuid() != 0:
        return []
    info = workdir.stat()
    try:
        user, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        return []
    return [f"user {user} {group};"] if NAME.fullmatch(user) and NAME.fullmatch(group) else []


def _new_errors(log: Path, offset: int) -> str:
    """The [emerg] lines nginx logged after `offset`: why a reload failed."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "; ".join(line for line in text.splitlines() if "[emerg]" in line)


def _shutting_down(worker: psutil.Process) -> bool:
    """Whether an nginx worker got the order to quit (its title says so), or is gone already."""
    try:
        return "shutting down" in " ".join(worker.cmdline()) or worker.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
