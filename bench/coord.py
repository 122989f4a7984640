"""Coordination: how evenly work is shared and how much moves when members come and go, ours beside tooz's default
partitioner; and how long a standby takes to lead after the leader is killed (file and Redis).

Balance and movement are deterministic (the same ids every run): 10,000 resource ids, members agent-0..agent-(n-1),
one owner each. Balance is the largest share over the mean share, averaged over 5 sets of ids. Movement is the
share of ids whose owner changes when a member leaves (averaged over up to 5 members leaving) and when a new one
joins; the least any scheme can move is 1/n on a leave and 1/(n+1) on a join. tooz's partitioner is
tooz.hashring.HashRing with its default 32 virtual nodes per member (tooz.partitioner.Partitioner's default); ours
is loadpilot.coord.ring (rendezvous hashing).

Takeover: two stand-in controllers (tests/coord/leader_proc.py) on the backend's default member timeout (10 s on
file, 5 s on Redis) and a 1 s tick; SIGKILL the leader, time until the standby logs that it leads. Median of
BENCH_COORD_ROUNDS (5) rounds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tooz.hashring import HashRing

from bench.common import ROOT, write_results
from loadpilot.coord.ring import Ring
from tests.coord.servers import running_redis

ID_SETS = [[f"{prefix}-{i:05d}" for i in range(10_000)] for prefix in ("vm", "host", "url", "svc", "pod")]
IDS = ID_SETS[0]
SIZES = [2, 3, 5, 10, 50]
ROUNDS = int(os.environ.get("BENCH_COORD_ROUNDS", "5"))
TICK_S = 1.0
LEAVERS = 5


def _ours(members: list[str], ids: list[str] = IDS) -> dict[str, str]:
    ring = Ring(dict.fromkeys(members, 1.0))
    return {key: ring.owners(key)[0] for key in ids}


def _tooz(members: list[str], ids: list[str] = IDS) -> dict[str, str]:
    ring = HashRing(members)  # partitions = 32, tooz's default
    return {key: next(iter(ring.get_nodes(key.encode()))) for key in ids}


def _balance(assign: Callable[[list[str], list[str]], dict[str, str]], members: list[str]) -> float:
    """max/mean share, averaged over the id sets (one set's luck is not the scheme's balance)."""
    out = []
    for ids in ID_SETS:
        counts = dict.fromkeys(members, 0)
        for member in assign(members, ids).values():
            counts[member] += 1
        out.append(max(counts.values()) / (len(ids) / len(members)))
    return statistics.mean(out)


def _moved(before: dict[str, str], after: dict[str, str]) -> float:
    return sum(1 for key in IDS if before[key] != after[key]) / len(IDS)


def _noise_floor(n: int, draws: int = 50) -> float:
    """The mean max/mean share of a perfectly random assignment of the ids: what no hash can beat."""
    rng = random.Random(n)
    out = []
    for _ in range(draws):
        counts = [0] * n
        for _ in IDS:
            counts[rng.randrange(n)] += 1
        out.append(max(counts) / (len(IDS) / n))
    return statistics.mean(out)


def partition_rows() -> list[dict[str, Any]]:
    """Balance and movement for each size, ours and tooz's."""
    rows = []
    for n in SIZES:
        members = [f"agent-{i}" for i in range(n)]
        floor = round(_noise_floor(n), 3)
        for name, assign in (("loadpilot (rendezvous)", _ours), ("tooz HashRing (32 vnodes)", _tooz)):
            base = assign(members)
            leaves = [_moved(base, assign([m for m in members if m != gone])) for gone in members[:LEAVERS]]
            join = _moved(base, assign([*members, "agent-new"]))
            rows.append(
                {
                    "table": "partition",
                    "members": n,
                    "scheme": name,
                    "max/mean share": round(_balance(assign, members), 3),
                    "random assignment": floor,
                    "moved on leave": round(statistics.mean(leaves), 4),
                    "ideal leave (1/n)": round(1 / n, 4),
                    "moved on join": round(join, 4),
                    "ideal join (1/(n+1))": round(1 / (n + 1), 4),
                }
            )
    return rows


def _events(path: Path, kind: str) -> list[float]:
    if not path.exists():
        return []
    return [e["t"] for e in map(json.loads, path.read_text().splitlines()) if e["event"] == kind]


def _wait(what: str, probe: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.02)


def _takeover_once(url: str, root: Path, timeout: float) -> float:
    namespace = f"b{uuid.uuid4().hex[:8]}"
    folder = root / namespace  # each round its own pool and fence: epochs start again in a new namespace
    folder.mkdir()
    procs = {}
    for member in ("a", "b"):
        args = ["--url", url, "--namespace", namespace, "--member", member, "--state", str(folder)]
        args += ["--events", str(folder / f"{namespace}-{member}"), "--timeout", str(timeout), "--tick", str(TICK_S)]
        procs[member] = subprocess.Popen(
            [sys.executable, "-m", "tests.coord.leader_proc", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(f"{member} leading or started", lambda m=member: _events(folder / f"{namespace}-{m}", "started"), 60)
        if member == "a":
            _wait("a leading", lambda: _events(folder / f"{namespace}-a", "applied"), 60)
    time.sleep(2 * TICK_S)
    killed = time.time()
    procs["a"].send_signal(signal.SIGKILL)
    try:
        _wait("b leading", lambda: _events(folder / f"{namespace}-b", "leading"), timeout + 30)
        return _events(folder / f"{namespace}-b", "leading")[0] - killed
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
            proc.wait()


def takeover_rows() -> list[dict[str, Any]]:
    """Takeover after SIGKILL on the file backend and on a throwaway Redis, median of ROUNDS."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="loadpilot-bench-coord-") as tmp, running_redis() as redis_url:
        folder = Path(tmp)
        for backend, url, timeout in (("file", f"file://{folder / 'coord'}", 10.0), ("redis", redis_url, 5.0)):
            times = [_takeover_once(url, folder, timeout) for _ in range(ROUNDS)]
            rows.append(
                {
                    "table": "takeover",
                    "backend": backend,
                    "member timeout s": timeout,
                    "tick s": TICK_S,
                    "rounds": ROUNDS,
                    "median s": round(statistics.median(times), 2),
                    "min s": round(min(times), 2),
                    "max s": round(max(times), 2),
                    "bound s (timeout + tick)": timeout + TICK_S,
                }
            )
    return rows


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return lines


def run() -> Path:
    """Measure, then write bench/results/coord.json and coord.md."""
    partition = partition_rows()
    takeover = takeover_rows()
    takeover_columns = [
        "backend",
        "member timeout s",
        "tick s",
        "rounds",
        "median s",
        "min s",
        "max s",
        "bound s (timeout + tick)",
    ]
    notes = [
        "10,000 ids; one owner each. Max/mean share: the mean over 5 sets of ids (vm-00000..., host-..., url-..., "
        "svc-..., pod-...); movement: the first set, moved on leave averaged over the first 5 members leaving. The "
        "least any scheme can move is 1/n (leave) and 1/(n+1) (join). tooz's default partitioner: HashRing, 32 "
        "virtual nodes per member.",
        "Random assignment: the mean max/mean share when each id picks a member uniformly at random (50 draws), the "
        "noise of 10,000 ids that no hash can beat (at 50 members, 200 ids each, it is already about 1.16).",
        "",
        "## Takeover after SIGKILL of the leader",
        "",
        *_table(takeover, takeover_columns),
        "",
        "Two stand-in controllers (tests/coord/leader_proc.py); SIGKILL the leader, time until the standby leads. "
        "The lease is the member timeout; the leader renews every tick, so takeover lands between timeout - tick "
        "and timeout + tick after the kill.",
        f"Run: `.venv/bin/python -m bench coord` (BENCH_COORD_ROUNDS sets the rounds, {ROUNDS} here).",
    ]
    columns = [
        "members",
        "scheme",
        "max/mean share",
        "random assignment",
        "moved on leave",
        "ideal leave (1/n)",
        "moved on join",
        "ideal join (1/(n+1))",
    ]
    path = write_results("coord", "Coordination: balance, movement, takeover", columns, partition, notes=notes)
    data_path = path.with_suffix(".json")
    data = json.loads(data_path.read_text())
    data["takeover"] = takeover
    data_path.write_text(json.dumps(data, indent=2) + "\n")
    return path
