"""What every load-balancer driver offers the pool supervisor.

A driver owns the thing clients connect to (the pool's front address) and decides nothing: the supervisor tells it
which workers are ready to take traffic, and the driver makes the balancer route to exactly those. Every driver
can also say what the balancer itself routes to now, read back from the balancer rather than from memory, so a
test or an operator can check that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable


class Route(NamedTuple):
    """One worker the balancer sends requests to."""

    worker_id: str
    host: str
    port: int
    weight: int = 1
    pid: int = 0  # the worker's process, for the shared socket (where the kernel, not a proxy, picks)


@runtime_checkable
class Balancer(Protocol):
    """A load balancer in front of one pool of workers."""

    kind: str

    @property
    def front(self) -> tuple[str, int]:
        """The (host, port) clients connect to."""
        ...

    def start(self) -> None:
        """Start (or adopt) the balancer so that `front` accepts connections; idempotent."""
        ...

    def update(self, routes: Sequence[Route]) -> None:
        """Route new requests to exactly these workers; requests already in flight elsewhere may finish.

        Raises TemporaryError when the balancer did not take the change (it keeps routing as before), or
        PermanentError when it never will (a rejected configuration).
        """
        ...

    def routes(self) -> list[Route]:
        """The workers the balancer routes new requests to now, as it reports them itself."""
        ...

    def stop(self) -> None:
        """Stop the balancer and release the front address; idempotent."""
        ...
