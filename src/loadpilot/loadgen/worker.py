"""One CPU worker process: burns a duty cycle of busy and sleep slices, and never outlives its parent.

The parent and its workers share one array of doubles (see `Shared`): the parent writes the duty and the stop
flag, each worker writes its own CPU time, so the parent reads the workers' CPU precisely without a system call
per worker. A slice is about 20 ms, jittered by +-20 % so that slices neither line up with the kernel's
accounting tick (which would bias /proc/stat) nor with each other's; each worker starts at a random phase.

Busy means CPU time, not wall time: a worker burns `duty x slice` of CPU-seconds in each slice (as measured by its
own process clock), so when other work shares its core it takes longer to get that CPU rather than getting less
of it. Only when it cannot get it within the slice does it deliver less: then the slice is simply all busy.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import time
from typing import Any

SLICE_S = 0.02
JITTER = 0.2
PR_SET_PDEATHSIG = 1  # linux/prctl.h

DUTY, STOP, FIRST_WORKER = 0, 1, 2


class Shared:
    """The shared array's layout: [duty, stop flag, CPU-seconds of worker 0, of worker 1, ...]."""

    @staticmethod
    def size(workers: int) -> int:
        """How many doubles an array for `workers` workers needs."""
        return FIRST_WORKER + workers

    @staticmethod
    def cpu_slot(index: int) -> int:
        """Where worker `index` writes its CPU-seconds."""
        return FIRST_WORKER + index


def _prctl() -> Any:
    """libc's prctl, looked up when the parent imports this module: a child forked from a process with threads
    must not dlopen (the loader's lock may have been held by another thread at the fork)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: the per-slice parent check remains


_PRCTL = _prctl()


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), and exit now if it already has.

    The kernel's parent-death signal is immediate and survives a SIGKILLed parent; the worker's loop also checks
    its parent pid every slice, for systems without prctl.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def run_worker(index: int, shared: Any, parent_pid: int, seed: int, slice_s: float = SLICE_S) -> None:
    """A worker's whole life: burn duty-cycled slices until the parent sets the stop flag or goes away.

    `shared` is the parent's shared array of doubles (multiprocessing.RawArray), laid out as `Shared` says.
    SIGINT and SIGHUP are ignored (Ctrl-C and a closed terminal reach the whole process group; the parent stops
    the workers itself and prints its summary); SIGTERM ends the worker as usual.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)
    rng = random.Random(seed)
    slot = Shared.cpu_slot(index)
    cpu_now, wall_now, getppid = time.process_time, time.perf_counter, os.getppid
    shared[slot] = cpu_now()
    time.sleep(rng.uniform(0.0, slice_s))  # spread the workers' phases
    start = wall_now()
    while shared[STOP] == 0.0 and getppid() == parent_pid:
        end = start + slice_s * rng.uniform(1 - JITTER, 1 + JITTER)
        budget = shared[DUTY] * (end - start)
        if budget > 0:
            cpu_end = cpu_now() + budget
            while True:
                cpu = cpu_now()
                shared[slot] = cpu
                if cpu >= cpu_end or wall_now() >= end:
                    break
        now = wall_now()
        if end > now:
            time.sleep(end - now)
        now = wall_now()
        start = end if now - end < slice_s else now  # a worker that fell far behind does not try to catch up
