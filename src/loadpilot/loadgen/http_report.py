"""What an HTTP load run reports: progress snapshots while it runs, the counters it keeps, the final report.

Latencies count from each request's intended send time (see loadgen/http.py), so a report's percentiles include
any time a request waited for a connection; `late_starts` and `sender_lag_max_s` say how much of that there was
and whether the generator itself fell behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from loadpilot.loadgen.histogram import Histogram, Summary

LATE_S = 0.010  # a request that leaves more than this after its intended time is a late start


@dataclass(frozen=True)
class Progress:
    """A snapshot while the load runs, for a progress display."""

    elapsed: float
    duration: float
    scheduled: int
    sent: int
    succeeded: int
    failed: int
    in_flight: int
    rate: float  # requests ended (answered or failed) per second since the previous snapshot
    intended_rate: float  # what the schedule asks for now


@dataclass(frozen=True)
class HttpReport:
    """The outcome of a run. Latencies (seconds) count from each request's intended send time, successes only."""

    url: str
    method: str
    schedule: str
    concurrency: int
    timeout_s: float
    scheduled: int  # requests whose send time came (all of the schedule's unless the run was stopped)
    sent: int  # requests written on a connection
    completed: int  # answers received, whatever their status
    succeeded: int  # answers with a status below 400
    failed: dict[str, int]  # by reason: "connect refused", "timeout", "timeout (queued)", "503", ...
    statuses: dict[str, int]  # answers by status code
    duration_s: float  # the schedule's length
    elapsed_s: float  # from the start until the last request ended
    send_rate: float  # requests sent per second, over the schedule (longer if sending ran late)
    achieved_rate: float  # successful answers per second, over the schedule (longer if answers came late)
    latency: Summary
    start_delay: Summary  # intended send time to written on the wire: queueing in the generator
    late_starts: int  # requests that left more than LATE_S after their intended time
    sender_lag_max_s: float  # how far the sender itself fell behind (CPU, not the concurrency cap)
    connections: int  # connections opened
    reconnects: int  # requests resent once because an idle keep-alive connection had closed
    cpu_s: float  # this process's CPU time during the run
    interrupted: bool = False

    @property
    def failed_total(self) -> int:
        """Every failed request, whatever the reason."""
        return sum(self.failed.values())

    def warnings(self) -> list[str]:
        """What a reader must know before trusting the numbers (the generator lagged, the cap was hit, ...)."""
        notes = []
        if self.sender_lag_max_s > 0.1:
            notes.append(
                f"the generator fell up to {1000 * self.sender_lag_max_s:.0f} ms behind its schedule (CPU-bound?): "
                "its latencies still count from the intended times"
            )
        if self.late_starts:
            notes.append(
                f"{self.late_starts} request(s) left more than {1000 * LATE_S:.0f} ms late (all {self.concurrency} "
                "connections busy, or the generator lagged): that wait is part of their latency"
            )
        if self.interrupted:
            notes.append("interrupted: the run stopped before its schedule ended")
        return notes

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (with the failed total and the warnings)."""
        data = asdict(self)
        data["failed_total"] = self.failed_total
        data["warnings"] = self.warnings()
        return data


@dataclass
class Tally:
    """The counters the sender and the workers update while the load runs (one event loop: no locks)."""

    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    succeeded: int = 0
    in_flight: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)
    start_delay: Histogram = field(default_factory=Histogram)
    late_starts: int = 0
    sender_lag_max: float = 0.0
    connections: int = 0
    reconnects: int = 0
    last_sent: float = 0.0
    last_succeeded: float = 0.0
