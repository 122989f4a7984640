"""Resident memory held on purpose, for memory-aware policies to see: every page written, and kept written."""

from __future__ import annotations

import mmap

PAGE = mmap.PAGESIZE


class ResidentMemory:
    """`size` bytes of anonymous private memory with every page touched, so it counts in the process's RSS.

    Nothing is locked (that needs privileges); instead `touch()` writes every page again, which the generator
    does once a second so that the pages stay recently used and resident. There is no swap on most servers
    anyway.
    """

    def __init__(self, size: int) -> None:
        """Map and touch `size` bytes (0 holds nothing)."""
        self.size = size
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) if size > 0 else None
        self._round = 0
        self.touch()

    def touch(self) -> None:
        """Write one byte in every page (a different value each round, so each write really dirties it)."""
        if self._map is None:
            return
        self._round = self._round % 255 + 1
        pages = (self.size + PAGE - 1) // PAGE
        self._map[::PAGE] = bytes([self._round]) * pages

    def close(self) -> None:
        """Give the memory back."""
        if self._map is not None:
            self._map.close()
            self._map = None
