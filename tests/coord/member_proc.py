"""What the coordination test processes (agent_proc, leader_proc) share: the command line that names a member
of a backend, and a SIGTERM that only asks the loop to stop."""

from __future__ import annotations

import argparse
import signal
import threading


def member_parser(description: str, timeout: float) -> argparse.ArgumentParser:
    """A parser with --url, --namespace, --member and --timeout (the member timeout, `timeout` by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the coordination backend")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--member", required=True, help="this member's id")
    parser.add_argument("--timeout", type=float, default=timeout, help="member timeout, s")
    return parser


def stop_on_sigterm() -> threading.Event:
    """An event SIGTERM sets: the process's loop finishes what it does and stops (a handler only flags)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    return stopping
