"""A tiny real HTTP worker for pool and balancer tests (stdlib only, starts in ~50 ms).

    python tests/act/worker_app.py --port P [--fd N] [--id NAME] [--exit-at-once] [--unready]

Serves GET / (its id), GET /slow?ms=N, POST /echo, GET /healthz and GET /metrics (the worker metrics convention:
http_requests_total, http_requests_in_flight, http_request_duration_seconds). With --fd it also serves the
inherited listening socket N. SIGTERM stops accepting, lets requests in flight finish, then exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.in_flight = 0
        self.sum = 0.0
        self.buckets = [0] * len(BUCKETS)

    def render(self) -> str:
        with self.lock:
            lines = [
                "# TYPE http_requests_total counter",
                f"http_requests_total {self.total}",
                "# TYPE http_requests_in_flight gauge",
                f"http_requests_in_flight {self.in_flight}",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self.buckets, strict=True):
                lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {count}')
            lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {self.total}')
            lines.append(f"http_request_duration_seconds_sum {self.sum}")
            lines.append(f"http_request_duration_seconds_count {self.total}")
        return "\n".join(lines) + "\n"


def make_handler(name: str, stats: Stats, ready: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one send (flushed after each request): no Nagle delay

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _served(self, code: int, body: bytes) -> None:
            with stats.lock:
                stats.in_flight += 1
            start = time.perf_counter()
            try:
                url = urlsplit(self.path)
                if url.path == "/slow":
                    time.sleep(int(parse_qs(url.query).get("ms", ["100"])[0]) / 1000)
                self._send(code, body)
            finally:
                took = time.perf_counter() - start
                with stats.lock:
                    stats.in_flight -= 1
                    stats.total += 1
                    stats.sum += took
                    for i, bound in enumerate(BUCKETS):
                        if took <= bound:
                            stats.buckets[i] += 1

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/healthz":
                self._send(200 if ready else 503, b"ok\n" if ready else b"not ready\n")
            elif path == "/metrics":
                self._send(200, stats.render().encode())
            else:
                self._served(200, f"{name}\n".encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._served(200, f"{name} {len(body)}\n".encode())

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--fd", type=int)
    ap.add_argument("--id", default="")
    ap.add_argument("--exit-at-once", action="store_true")
    ap.add_argument("--unready", action="store_true")
    args = ap.parse_args()
    if args.exit_at_once:
        print("worker_app: exiting at once as asked", file=sys.stderr)
        sys.exit(3)
    name = args.id or f"{os.getpid()}:{args.port}"
    stats = Stats()
    handler = make_handler(name, stats, not args.unready)
    servers = [ThreadingHTTPServer((args.host, args.port), handler)]
    if args.fd is not None:
        shared = ThreadingHTTPServer((args.host, 0), handler, bind_and_activate=False)
        shared.socket.close()
        shared.socket = socket.socket(fileno=args.fd)
        servers.append(shared)
    for server in servers:
        server.daemon_threads = False  # server_close() waits for requests in flight
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):  # wake now and then: a signal delivered to another thread runs its handler here
        pass
    for server in servers:
        server.shutdown()  # stop accepting
    for server in servers:
        server.server_close()  # join request threads
    sys.exit(0)


if __name__ == "__main__":
    main()
