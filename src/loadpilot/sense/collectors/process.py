"""The process collector: CPU (as a fraction of one core) and RSS of processes chosen by pid file or pattern."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import psutil
from pydantic import Field, field_validator, model_validator

from loadpilot.model import Resource
from loadpilot.sense.collectors.base import Collection, CollectorOptions, Rates
from loadpilot.sense.collectors.procstat import ProcessGone, read_stat

SOURCE = "process"


class ProcessOptions(CollectorOptions):
    """`type = "process"`: a named group of processes, found by a pid file or a pattern."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    pid_file: str | None = None
    pattern: str | None = None
    match: str = Field(default="cmdline", pattern="^(name|cmdline)$")
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_way_to_find(self) -> ProcessOptions:
        if (self.pid_file is None) == (self.pattern is None):
            raise ValueError("pattern: give exactly one of pid_file or pattern")
        return self


class ProcessCollector:
    """Samples every process of one configured group; processes may come and go between readings."""

    Options: ClassVar[type[CollectorOptions]] = ProcessOptions

    def __init__(self, options: CollectorOptions, host: str) -> None:
        assert isinstance(options, ProcessOptions)
        self.options = options
        self.host = host
        self._regex = re.compile(options.pattern) if options.pattern else None
        self._verdicts: dict[int, bool] = {}  # pid -> matched, so each pid is inspected once
        self._rates = Rates()

    def _pid_from_file(self) -> set[int]:
        assert self.options.pid_file is not None
        try:
            return {int(Path(self.options.pid_file).read_text().split()[0])}
        except (OSError, ValueError, IndexError):
            return set()

    def _matching_pids(self) -> set[int]:
        assert self._regex is not None
        pids = set(psutil.pids())
        self._verdicts = {pid: v for pid, v in self._verdicts.items() if pid in pids}
        for pid in pids - self._verdicts.keys():
            try:
                proc = psutil.Process(pid)
                text = proc.name() if self.options.match == "name" else " ".join(proc.cmdline()) or proc.name()
            except psutil.Error:
                continue
            self._verdicts[pid] = bool(self._regex.search(text))
        return {pid for pid, matched in self._verdicts.items() if matched}

    def collect(self, now: float) -> Collection:
        """One reading of every process in the group."""
        pids = self._pid_from_file() if self.options.pid_file else self._matching_pids()
        out = Collection()
        seen: set[str] = set()
        for pid in sorted(pids):
            try:
                stat = read_stat(pid)
            except ProcessGone:
                continue
            rid = f"{self.host}/proc/{self.options.name}/{pid}"
            seen.add(rid)
            labels = {"host": self.host, "group": self.options.name, "pid": str(pid), "name": stat.name}
            out.resources.append(Resource(rid, "process", {**labels, **self.options.labels}))
            rate = self._rates.rate(rid, stat.cpu_s, now)
            if rate is not None:
                out.add(rid, "cpu.util", rate, now, "cores", SOURCE)
            out.add(rid, "mem.rss_bytes", stat.rss_bytes, now, "bytes", SOURCE)
        self._rates.forget_except(seen)
        return out

    def close(self) -> None:
        """Nothing to release."""
