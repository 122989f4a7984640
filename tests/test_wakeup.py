"""WakeEvent: threading.Event's behaviour, and safe to set from a signal handler (threading.Event is not)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from loadpilot.wakeup import WakeEvent

# The main thread sets, clears and waits without pause while another thread pelts it with signals whose handler
# sets the same event. With threading.Event it hangs within a second (a handler waits for the lock its own thread
# holds): this is how a pool supervisor hung on SIGCHLD.
PELTED = textwrap.dedent(
    """
    import os, signal, threading, time
    from loadpilot.wakeup import WakeEvent
    event = WakeEvent()
    signal.signal(signal.SIGUSR1, lambda *_: event.set())
    done = threading.Event()
    def pelt():
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGUSR1)
    threading.Thread(target=pelt, daemon=True).start()
    rounds, deadline = 0, time.monotonic() + 1.5
    while time.monotonic() < deadline:
        event.wait(0.001); event.clear(); event.set(); rounds += 1
    done.set()
    print("rounds", rounds)
    """
)


def test_a_signal_handler_may_set_it_while_its_thread_uses_it() -> None:
    done = subprocess.run([sys.executable, "-c", PELTED], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[1]) > 100


def test_it_behaves_as_an_event() -> None:
    event = WakeEvent()
    assert not event.is_set()
    started = time.monotonic()
    assert event.wait(0.05) is False
    assert time.monotonic() - started >= 0.05
    event.set()
    assert event.is_set() and event.wait(5) is True and event.wait() is True
    event.clear()
    assert not event.is_set() and event.wait(0.01) is False  # a cleared wake-up does not wake the next wait
    threading.Timer(0.05, event.set).start()
    started = time.monotonic()
    assert event.wait(5) is True and time.monotonic() - started < 2  # woken by another thread
