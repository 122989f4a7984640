"""The spool keeps batches on disk, oldest first, within a byte bound, and counts what it drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadpilot.errors import PermanentError
from loadpilot.transport.spool import Spool


def test_batches_come_out_oldest_first_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    for i in range(5):
        spool.put(f"b{i}", f"body{i}".encode(), samples=i)
    first = spool.oldest(2)
    assert [b.batch_id for b in first] == ["b0", "b1"]
    assert [b.batch_id for b in spool.oldest(2)] == ["b0", "b1"]  # reading does not remove
    spool.ack(first[0].seq)
    assert [b.batch_id for b in spool.oldest()] == ["b1", "b2", "b3", "b4"]
    assert spool.stats().batches == 4


def test_batches_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    spool.put("b0", b"x" * 100, samples=3)
    spool.close()
    again = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    [item] = again.oldest()
    assert (item.batch_id, item.body, item.samples) == ("b0", b"x" * 100, 3)


def test_a_full_spool_drops_the_oldest_and_counts_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=64 * 1024)
    body = b"x" * 10_000
    dropped = [spool.put(f"b{i}", body, samples=10) for i in range(10)]
    assert sum(dropped) == 4  # six 10 kB bodies fit in 64 KiB
    stats = spool.stats()
    assert stats.batches == 6 and stats.bytes <= 64 * 1024
    assert (stats.dropped_batches, stats.dropped_samples) == (4, 40)
    assert [b.batch_id for b in spool.oldest()] == [f"b{i}" for i in range(4, 10)]
    spool.close()
    assert Spool(tmp_path / "spool.db", max_bytes=64 * 1024).stats().dropped_batches == 4  # counted durably


def test_a_batch_larger_than_the_whole_spool_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=64 * 1024)
    with pytest.raises(PermanentError, match="spool_max_bytes"):
        spool.put("big", b"x" * (65 * 1024), samples=1)


def test_a_rejected_batch_is_removed_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    spool.put("bad", b"{}", samples=7)
    [item] = spool.oldest()
    spool.reject(item.seq, item.samples)
    stats = spool.stats()
    assert (stats.batches, stats.dropped_batches, stats.dropped_samples) == (0, 1, 7)
