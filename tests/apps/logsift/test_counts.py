"""Template counts: bounded in memory; in a SQLite file, several processes writing at once all add up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadpilot.apps.logsift.counts import MemoryCounts, SQLiteCounts, TemplateCount

WRITER = """
import sys
from pathlib import Path
from loadpilot.apps.logsift.counts import SQLiteCounts, TemplateCount
counts = SQLiteCounts(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    counts.add([TemplateCount("shared <NUM>", 1, "shared 1"), TemplateCount(f"own {sys.argv[3]}", 2, "own")])
counts.close()
"""


def test_memory_counts_add_up_and_stay_bounded() -> None:
    counts = MemoryCounts(max_templates=2)
    counts.add([TemplateCount("a", 1, "a1"), TemplateCount("b", 5, "b1")])
    counts.add([TemplateCount("a", 6, "a2"), TemplateCount("c", 3, "c1")])
    totals = counts.top(10)
    assert [(t.template, t.count, t.example) for t in totals.templates] == [("a", 7, "a1"), ("b", 5, "b1")]
    assert totals.dropped == 3
    assert [t.template for t in counts.top(1).templates] == ["a"]


def test_processes_writing_one_file_at_once_add_up(tmp_path: Path) -> None:
    db = tmp_path / "counts.sqlite"
    SQLiteCounts(db).close()
    rounds = 200
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(rounds), str(n)], stderr=subprocess.PIPE)
        for n in range(3)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err.decode()
    counts = SQLiteCounts(db)
    totals = {t.template: t.count for t in counts.top(10).templates}
    counts.close()
    assert totals == {"shared <NUM>": 3 * rounds, "own 0": 2 * rounds, "own 1": 2 * rounds, "own 2": 2 * rounds}


def test_an_unusable_database_is_named(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="missing"):
        SQLiteCounts(tmp_path / "missing" / "counts.sqlite")
