"""No balancer: a `ports` pool whose clients (or an outside proxy) reach each worker on its own port."""

from __future__ import annotations

from collections.abc import Sequence

from loadpilot.act.lb.base import Route


class DirectBalancer:
    """Routes nothing itself; reports the ready workers, which is what an outside proxy should route to."""

    kind = "none"

    def __init__(self, host: str, port: int) -> None:
        self._front = (host, port)
        self._routes: list[Route] = []

    @property
    def front(self) -> tuple[str, int]:
        """No single front: the pool's configured address, for display."""
        return self._front

    def start(self) -> None:
        """Nothing to start."""

    def update(self, routes: Sequence[Route]) -> None:
        """Remember the ready workers."""
        self._routes = list(routes)

    def routes(self) -> list[Route]:
        """The ready workers, as last told."""
        return list(self._routes)

    def stop(self) -> None:
        """Nothing to stop."""
