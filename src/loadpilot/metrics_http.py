"""A small Prometheus `/metrics` listener for the components that have no web server of their own.

The agent, the controller and each pool supervisor keep their metrics in a CollectorRegistry of their own (never
prometheus_client's global one, so several components can share a process, as in tests and `loadpilot up`), and
serve it with prometheus_client's WSGI server in a daemon thread, only when `metrics_listen` is set. Port 0 binds
a free port: `MetricsListener.port` says which one, and the start is logged with the address.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from loadpilot.config import parse_listen
from loadpilot.errors import PermanentError

log = logging.getLogger(__name__)


class MetricsListener:
    """Serves one registry on `http://<listen>/metrics` (any path answers) until stopped."""

    def __init__(self, registry: CollectorRegistry, listen: str, what: str) -> None:
        self.registry = registry
        self.host, self.requested_port = parse_listen(listen)
        self.what = what
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsListener:
        """Bind and serve in a daemon thread; PermanentError naming the address when it cannot bind."""
        try:
            self._server, self._thread = start_http_server(self.requested_port, self.host, self.registry)
        except OSError as exc:
            raise PermanentError(
                f"{self.what}: cannot serve /metrics on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from exc
        log.info("%s: Prometheus metrics on %s", self.what, self.url)
        return self

    @property
    def port(self) -> int:
        """The port bound (the one the system chose when 0 was asked for); 0 before start."""
        return int(self._server.server_address[1]) if self._server is not None else 0

    @property
    def url(self) -> str:
        """Where to scrape: http://host:port/metrics."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port (safe to call twice, or before start)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, listen: str, what: str) -> MetricsListener | None:
    """Start a listener when `listen` is set ("" means no listener); the caller stops it."""
    return MetricsListener(registry, listen, what).start() if listen else None
