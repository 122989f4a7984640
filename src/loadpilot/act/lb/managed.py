"""What the managed balancers (nginx, HAProxy) share: vetting routes before they go into a config file, finding the
binary, choosing and checking the front port, and starting and stopping a child process so none is left behind.

A managed balancer is a child process loadpilot starts, configures and stops itself, with every file it writes
(config, pid file, logs, sockets, temp files) inside one work directory that belongs to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import psutil

from loadpilot.act.lb.base import Route
from loadpilot.errors import PermanentError, TemporaryError

WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_WEIGHT = 256  # HAProxy's limit; nginx takes more, but one range for every driver keeps routes portable
UNIX_PATH_MAX = 97  # sun_path is 108 bytes on Linux; haproxy binds "<path>.<pid>.tmp" first and allows 97


def is_ip(host: str) -> bool:
    """Whether `host` is an IPv4 or IPv6 address literal (not a name), so it can go to a runtime API as it is."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_routes(routes: Sequence[Route], *, ip_only: bool = False) -> list[Route]:
    """Vet routes before they are written into a balancer's configuration; raise PermanentError naming the problem.

    Worker ids and hosts come from loadpilot's own code, but a value with a space, a quote or a semicolon would
    silently change the meaning of a config file, so anything outside a conservative alphabet is refused.
    """
    seen: set[str] = set()
    for route in routes:
        where = f"route {route.worker_id!r}"
        if not isinstance(route.worker_id, str) or not WORKER_ID.fullmatch(route.worker_id):
            raise PermanentError(f"{where}: a worker id must be 1-128 letters, digits or ._:@- (starting alnum)")
        if route.worker_id in seen:
            raise PermanentError(f"{where}: the same worker id is routed twice; give every worker its own id")
        seen.add(route.worker_id)
        if not isinstance(route.host, str) or not (is_ip(route.host) or HOST_NAME.fullmatch(route.host)):
            raise PermanentError(f"{where}: host {route.host!r} is neither an IP address nor a host name")
        if ip_only and not is_ip(route.host):
            raise PermanentError(f"{where}: host {route.host!r} must be an IP address for this balancer")
        if not isinstance(route.port, int) or not 1 <= route.port <= 65535:
            raise PermanentError(f"{where}: port {route.port!r} is not in 1..65535")
        if not isinstance(route.weight, int) or not 1 <= route.weight <= MAX_WEIGHT:
            raise PermanentError(f"{where}: weight {route.weight!r} is not in 1..{MAX_WEIGHT}")
        if not isinstance(route.pid, int) or route.pid < 0:
            raise PermanentError(f"{where}: pid {route.pid!r} is not a process id")
    return list(routes)


def host_port(host: str, port: int) -> str:
    """`host:port` as nginx and HAProxy write an address, with brackets around an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_front_host(host: str) -> str:
    """The front host if it is an IP address literal; a balancer listens on an address, not a name."""
    if not is_ip(host):
        raise PermanentError(f"front host {host!r} must be an IP address such as 127.0.0.1 or 0.0.0.0")
    return host


def check_workdir(workdir: Path) -> Path:
    """Create the work directory (absolute, owned by us), refusing names that would break a config file."""
    workdir = Path(workdir).absolute()
    if re.search(r"[\s;'\"{}#$\\]", str(workdir)):
        raise PermanentError(f"work directory {str(workdir)!r} contains a space, quote or ;{{}}#$\\; rename it")
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def socket_path(workdir: Path, name: str) -> Path:
    """Where a unix socket for this work directory lives: inside it, or, when that path is longer than the OS
    allows (see UNIX_PATH_MAX), in a private folder under /tmp named after the work directory."""
    path = workdir / name
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(workdir)).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"loadpilot-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid() or short.stat().st_mode & 0o077:
        raise PermanentError(f"{short} exists but is not private to this user; remove it")
    return short / name


def find_binary(binary: str, package: str) -> str:
    """The path of a balancer's executable; also looks in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/local/sbin:/usr/sbin:/sbin")
    if found is None:
        raise PermanentError(f"{binary!r} was not found; install it (apt-get install {package}) or pass binary=PATH")
    return found


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def pick_free_port(host: str) -> int:
    """A port nothing listens on right now on `host` (the kernel's pick); another process may still take it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ensure_port_free(host: str, port: int) -> None:
    """Raise PermanentError when something already listens on (host, port), before a child fails on it slowly."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PermanentError(
                f"front address {host_port(host, port)} is in use ({exc.strerror}); stop what listens there or "
                "choose another port"
            ) from exc


def accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether a TCP connection to (host, port) succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, to put into an error message ('' when there is none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_accepting(proc: subprocess.Popen[bytes], what: str, host: str, port: int, timeout_s: float, log: Path) -> None:
    """Wait until the child `proc` accepts on (host, port); PermanentError with its log if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PermanentError(f"{what} exited with code {proc.returncode} at start:\n{tail(log)}")
        if accepts(host, port):
            return
        time.sleep(0.01)
    raise TemporaryError(f"{what} did not accept on {host_port(host, port)} within {timeout_s:g} s")


def process_from_pidfile(pidfile: Path, *markers: str) -> psutil.Process | None:
    """The live process whose id is in `pidfile` if its command line holds every marker, else None.

    The markers (the binary's name, the work directory) make sure a recycled process id is never taken for a
    balancer of ours.
    """
    try:
        pid = int(pidfile.read_text().strip())
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    return proc if all(marker in cmdline for marker in markers) else None


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not _gone(p)]
        if alive:
            time.sleep(0.01)
    return [p for p in alive if not _gone(p)]


def stop_process_tree(
    main: psutil.Process, graceful: signal.Signals, timeout_s: float, popen: subprocess.Popen[bytes] | None = None
) -> None:
    """Stop a balancer process and its children: `graceful` first, then SIGKILL after `timeout_s`; nothing is left.

    The children are listed before the signal, so workers that outlive their master (reparented to init) are
    still found and killed.
    """
    try:
        family = [main, *main.children(recursive=True)]
    except psutil.Error:
        family = [main]
    with contextlib.suppress(psutil.Error):
        main.send_signal(graceful)
    if popen is not None:  # reap our own child so it does not linger as a zombie
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=timeout_s)
    left = _wait_gone(family, timeout_s if popen is None else 0.5)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if popen is not None:
        popen.wait()
    left = _wait_gone(left, 5.0)
    if left:
        raise TemporaryError(f"processes {[p.pid for p in left]} did not exit after SIGKILL")


def kill_leftovers(processes: Iterable[psutil.Process]) -> None:
    """SIGKILL the processes of a balancer whose main process died, and wait until they are gone.

    psutil checks each one's creation time, so a process id reused since is never hit.
    """
    alive = [proc for proc in processes if not _gone(proc)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if _wait_gone(alive, 5.0):
        raise TemporaryError(f"processes {[p.pid for p in alive]} did not exit after SIGKILL")
