"""The CPU load generator: worker processes whose duty a feedback loop sets to hold the machine inside a band.

One process per loaded core (threads would share one interpreter lock and so one core). The parent reads the
machine's total utilisation from /proc/stat five times a second, and the workers' own CPU from the shared array
they write, and hands both to the `DutyController`, which sets the duty every worker runs at. Once a second it
reports a reading (total, own, duty) over that exact second; the summary is computed over those readings.

No worker outlives the run: `stop()` sets the shared stop flag, then TERMs and KILLs whatever is left; a worker
whose parent dies is killed by the kernel (PR_SET_PDEATHSIG) or notices within a slice.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from loadpilot.errors import PermanentError
from loadpilot.loadgen.cpustat import CpuTimes, read_cpu_times, utilisation
from loadpilot.loadgen.duty import DutyController, Gains
from loadpilot.loadgen.memory import ResidentMemory
from loadpilot.loadgen.summary import Band, Reading
from loadpilot.loadgen.worker import DUTY, STOP, Shared, run_worker

TICK_S = 0.2  # control readings at 5 Hz
REPORT_S = 1.0  # a reading for the user (and the summary) every second
TICKS_KEPT = 1500  # five minutes of control readings
STOP_WAIT_S = 1.0
GROUP_SIGNAL_GRACE_S = 0.1


def machine_cores() -> int:
    """How many cores /proc/stat's totals cover: every online CPU of the machine."""
    return os.cpu_count() or 1


class CpuLoad:
    """A running CPU load generator; use as a context manager so the workers always end.

    `band`: the total utilisation to hold (fractions of the whole machine); `workers`: worker processes (one per
    core to load); `memory`: bytes of resident memory to hold as well.
    """

    def __init__(self, band: Band, workers: int, memory: int = 0, gains: Gains | None = None) -> None:
        if workers < 1:
            raise ValueError("at least one worker is needed")
        self.band = band
        self.workers = workers
        self.cores = machine_cores()
        self.controller = DutyController(band.centre, workers / self.cores, gains)
        self.memory_bytes = memory
        self._context = multiprocessing.get_context("fork")
        self._shared: Any = self._context.RawArray("d", Shared.size(workers))
        self._processes: list[BaseProcess] = []
        self._memory: ResidentMemory | None = None
        self._stopping = False
        self.ticks: deque[Reading] = deque(maxlen=TICKS_KEPT)  # the latest control readings, for a closer look
        self.readings: list[Reading] = []

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [p.pid for p in self._processes if p.pid is not None]

    def __enter__(self) -> CpuLoad:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Fork the workers (at duty 0), then map and touch the memory to hold."""
        parent = os.getpid()
        seed = int.from_bytes(os.urandom(4), "little")
        for index in range(self.workers):
            process = self._context.Process(
                target=run_worker,
                args=(index, self._shared, parent, seed + index),
                name=f"loadpilot-cpu-{index}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        if self.memory_bytes:
            try:
                self._memory = ResidentMemory(self.memory_bytes)
            except (OSError, ValueError) as exc:
                self.stop()
                raise PermanentError(f"cannot hold {self.memory_bytes} bytes of memory: {exc}") from exc

    def request_stop(self) -> None:
        """Ask `run` to return at its next reading (safe to call from a signal handler: it only sets a flag)."""
        self._stopping = True

    def stop(self) -> None:
        """End every worker and release the memory; waits at most about STOP_WAIT_S, then kills."""
        self._shared[STOP] = 1.0
        deadline = time.monotonic() + STOP_WAIT_S
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.terminate()
                process.join(0.5)
            if process.is_alive():
                process.kill()
                process.join()
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    def _own_cpu_s(self) -> float:
        return float(sum(self._shared[Shared.cpu_slot(i)] for i in range(self.workers)))

    def _check_workers(self) -> None:
        """Raise if a worker died on its own; a signal sent to the whole group (which also stops us) is no error."""
        dead = [p for p in self._processes if not p.is_alive()]
        if not dead:
            return
        time.sleep(GROUP_SIGNAL_GRACE_S)  # the same signal may be on its way to this process's handler
        if not self._stopping:
            raise PermanentError(f"CPU worker {dead[0].pid} ended unexpectedly (exit code {dead[0].exitcode})")

    def run(self, duration: float | None = None, on_reading: Callable[[Reading], None] | None = None) -> list[Reading]:
        """Hold the band for `duration` seconds (None: until `request_stop`); returns the once-a-second readings.

        `on_reading` is called with each once-a-second reading as it is taken.
        """
        began = time.monotonic()
        last_times, last_own, last_at = read_cpu_times(), self._own_cpu_s(), began
        report_times, report_own, report_at = last_times, last_own, began
        tick = 0
        while True:  # each pass is one tick; a stop is noticed at the next one, which reports what is left
            tick += 1
            due = began + tick * TICK_S
            if duration is not None:
                due = min(due, began + duration)
            time.sleep(max(0.0, due - time.monotonic()))
            times, own_s, now = read_cpu_times(), self._own_cpu_s(), time.monotonic()
            total, own = utilisation(last_times, times), _share(own_s - last_own, last_times, times)
            duty = self.controller.update(total, own, now - last_at)
            self._shared[DUTY] = duty
            self.ticks.append(Reading(now - began, now - last_at, total, own, duty))
            last_times, last_own, last_at = times, own_s, now
            finished = self._stopping or (duration is not None and now - began >= duration - 1e-6)
            if now - report_at >= REPORT_S - TICK_S / 2 or (finished and now - report_at >= TICK_S / 2):
                reading = Reading(
                    now - began,
                    now - report_at,
                    utilisation(report_times, times),
                    _share(own_s - report_own, report_times, times),
                    duty,
                )
                self.readings.append(reading)
                report_times, report_own, report_at = times, own_s, now
                if self._memory is not None:
                    self._memory.touch()
                if on_reading is not None:
                    on_reading(reading)
            if finished:
                break
            self._check_workers()
        return self.readings


def _share(cpu_s: float, before: CpuTimes, after: CpuTimes) -> float:
    """CPU-seconds as a share of the whole machine's time between two /proc/stat readings."""
    total = after.total - before.total
    return min(1.0, max(0.0, cpu_s / total)) if total > 0 else 0.0
