"""The command line: one logsift worker serving a port, a listening socket inherited from its parent, or both.

    python -m loadpilot.apps.logsift [--host 127.0.0.1] [--port P] [--fd N] [--io-ms MS] [--concurrency N]
                                     [--queue N] [--db PATH] [--max-bytes N] [--max-lines N] [--threads N]

SIGTERM (or SIGINT) stops accepting, lets requests in flight finish (for at most --graceful-timeout seconds)
and exits 0. Exit 2 for a usage error, 1 when the worker cannot start (port taken, database unusable).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

BACKLOG = 2048


def main(argv: list[str] | None = None) -> int:
    """Run one worker until it is told to stop; the process's exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.port is None and args.fd is None:
        parser.error("say where to serve: --port P (bound on --host), --fd N (an inherited listening socket), or both")
    try:
        sockets = _sockets(args.host, args.port, args.fd)
    except _UsageError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"logsift: {exc}", file=sys.stderr)
        return 1

    # Imported only now, so that `--help` and usage errors answer at once.
    import uvicorn

    from loadpilot.apps.logsift.app import Settings, create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s logsift[%(process)d] %(message)s")
    settings = Settings(
        io_ms=args.io_ms,
        concurrency=args.concurrency,
        queue=args.queue,
        db=args.db,
        max_bytes=args.max_bytes,
        max_lines=args.max_lines,
        threads=args.threads,
    )
    try:
        app = create_app(settings)
    except OSError as exc:
        print(f"logsift: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    server = uvicorn.Server(config)
    # uvicorn restores the handlers it found and re-raises the signal that stopped it: these make that a no-op,
    # so a graceful stop exits 0 instead of dying of the signal.
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    where = ", ".join(_describe(s) for s in sockets)
    print(f"logsift: pid {os.getpid()} serving {where}", file=sys.stderr, flush=True)
    server.run(sockets=sockets)
    return 0 if server.started else 1


class _UsageError(Exception):
    pass


def _stopped(signum: int, frame: FrameType | None) -> None:
    """Nothing to do: uvicorn has already shut down gracefully when this runs."""


def _sockets(host: str, port: int | None, fd: int | None) -> list[socket.socket]:
    sockets = []
    if fd is not None:
        sockets.append(_inherited(fd))
    if port is not None:
        sockets.append(_listen(host, port))
    return sockets


def _inherited(fd: int) -> socket.socket:
    """The listening TCP socket open on file descriptor `fd`, or a _UsageError saying what it is instead."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise _UsageError(
            f"--fd {fd}: not an open socket ({exc.strerror}); pass a listening socket's descriptor"
        ) from None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        sock.detach()
        raise _UsageError(f"--fd {fd}: not a stream socket; pass a listening TCP socket")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise _UsageError(f"--fd {fd}: the socket is not listening; the parent must bind() and listen() first")
    return sock


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening; OSError naming the address when that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port or --host") from None
    return sock


def _describe(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address} (fd {sock.fileno()})"
    host, port = address[0], address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port} (fd {sock.fileno()})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadpilot.apps.logsift",
        description="logsift: a web service that groups log lines by similarity (one worker).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address for --port (default: %(default)s)")
    parser.add_argument("--port", type=_count(0), help="serve on host:port (0 picks a free port)")
    parser.add_argument("--fd", type=_count(0), help="also (or only) serve this inherited listening socket")
    parser.add_argument("--io-ms", type=_amount, default=0.0, help="simulated backend wait per analysis, ms")
    parser.add_argument(
        "--concurrency", type=_count(1), default=64, help="requests at once; more wait or get 503 (default: 64)"
    )
    parser.add_argument(
        "--queue", type=_count(0), default=0, help="requests that may wait for a place; more get 503 (default: 0)"
    )
    parser.add_argument("--db", type=Path, help="SQLite file for template counts shared by workers (WAL)")
    parser.add_argument("--max-bytes", type=_count(1), default=8 * 2**20, help="largest body, bytes (default: 8 MiB)")
    parser.add_argument("--max-lines", type=_count(1), default=200_000, help="most lines per request (default: 200000)")
    parser.add_argument(
        "--threads", type=_count(0), default=1, help="mining threads (default: 1); 0 mines on the event loop"
    )
    parser.add_argument("--graceful-timeout", type=_count(1), default=20, help="seconds to finish requests on stop")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, not {text}")
    return value
