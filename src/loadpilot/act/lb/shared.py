"""The embedded default balancer: one listening socket that every worker process inherits.

The supervisor opens the socket and passes its file descriptor to each worker it starts (`pass_fds`); the kernel
hands each new connection to whichever worker calls accept() first. Nothing sits between client and worker, so
there is nothing to install and nothing to reconfigure, but also nothing to steer: the driver cannot stop the
kernel from giving a connection to a worker that still holds the socket. A worker leaves the pool by closing its
copy (the supervisor TERMs it; it stops accepting and finishes what it has). `routes()` therefore reports, from
/proc, which routed workers are alive and still hold the socket: those are the ones the kernel can pick.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence

from loadpilot.act.lb.base import Route
from loadpilot.act.lb.managed import check_front_host, check_routes
from loadpilot.errors import PermanentError


class SharedSocketBalancer:
    """One listening TCP socket shared by the workers; the kernel spreads connections among those that accept."""

    kind = "shared"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 1024, inheritable: bool = False):
        """Describe the socket; nothing is bound until start(). Port 0 means a free port chosen at the first start.

        `inheritable` marks the descriptor inheritable for a plain fork/exec; subprocess's `pass_fds` does that in
        the child by itself, so the supervisor does not need it.
        """
        self._host = check_front_host(host)
        if not 0 <= port <= 65535:
            raise PermanentError(f"front port {port} is not in 0..65535")
        if backlog < 1:
            raise PermanentError(f"backlog {backlog} must be at least 1")
        self._port = port
        self._backlog = backlog
        self._inheritable = inheritable
        self._sock: socket.socket | None = None
        self._routes: list[Route] = []
        self._lock = threading.Lock()

    @property
    def front(self) -> tuple[str, int]:
        """The (host, port) clients connect to; the real port once started, even when 0 was asked for."""
        return (self._host, self._port)

    def start(self) -> None:
        """Bind and listen (idempotent); the port chosen for port 0 is kept across stop() and start()."""
        with self._lock:
            if self._sock is not None:
                return
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._port))
                sock.listen(self._backlog)
            except OSError as exc:
                sock.close()
                raise PermanentError(
                    f"cannot listen on {self._host} port {self._port}: {exc.strerror}; stop what listens there "
                    "or choose another port"
                ) from exc
            sock.set_inheritable(self._inheritable)
            # Non-blocking for every holder (the flag lives on the shared open file): when several workers wake
            # for one connection, the losers' accept() fails with EAGAIN instead of blocking until the next
            # connection, which would also hold up a worker's graceful exit.
            sock.setblocking(False)
            self._port = int(sock.getsockname()[1])
            self._sock = sock

    def fileno(self) -> int:
        """The listening socket's descriptor, for the supervisor to pass to each worker (pass_fds=[fd])."""
        sock = self._sock
        if sock is None:
            raise PermanentError("the shared socket is not open; call start() before starting workers")
        return sock.fileno()

    def update(self, routes: Sequence[Route]) -> None:
        """Record which workers (and their processes) are meant to serve; the kernel needs no telling.

        Workers removed here keep receiving connections until they close the socket, which the supervisor
        makes them do by stopping them.
        """
        checked = check_routes(routes)
        with self._lock:
            self._routes = checked

    def routes(self) -> list[Route]:
        """The routed workers whose process is alive and still holds the listening socket, read from /proc.

        A route without a pid cannot be checked and is left out; so is a process we may not inspect, and
        every route where there is no /proc (Linux only).
        """
        with self._lock:
            sock, routes = self._sock, list(self._routes)
        if sock is None:
            return []
        inode = os.fstat(sock.fileno()).st_ino
        return [route for route in routes if route.pid > 0 and _holds_socket(route.pid, inode)]

    def stop(self) -> None:
        """Close our copy of the socket (idempotent); the address is free once the workers holding it have exited."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _holds_socket(pid: int, inode: int) -> bool:
    """Whether process `pid` has a descriptor open on the socket with this inode (False if gone or not ours)."""
    wanted = f"socket:[{inode}]"
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:  # no such process, a zombie (no fd dir entries), or not ours to inspect
        return False
    for name in names:
        try:
            if os.readlink(f"{fd_dir}/{name}") == wanted:
                return True
        except OSError:  # closed between listdir and readlink
            continue
    return False
