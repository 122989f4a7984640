"""Each worker's own port, from the pool's range: never two workers on one port, never a port in use."""

from __future__ import annotations

import socket
from collections.abc import Callable


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (checked by binding it the way a server would)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortPicker:
    """Picks a port for a worker slot: its own (first + slot) when free, else the next free one in the range."""

    def __init__(self, host: str, ports: tuple[int, int], event: Callable[..., None]) -> None:
        self.host = host
        self.first, self.last = ports
        self.event = event
        self._reported: set[int] = set()

    def pick(self, slot: int, taken: set[int]) -> int | None:
        """A free port not `taken` by another worker; None (and an event) when the whole range is busy."""
        size = self.last - self.first + 1
        for offset in range(size):
            port = self.first + (slot + offset) % size
            if port in taken:
                continue
            if port_is_free(self.host, port):
                self._reported.discard(port)
                return port
            if port not in self._reported:  # say it once, not every tick
                self._reported.add(port)
                self.event("port_skipped", f"port {port}", "in use by another program; skipped", "skipped")
        self.event("no_port", f"ports {self.first}-{self.last}", "every port of the range is in use", "error")
        return None
