"""Run benchmarks: `python -m bench` runs them all, `python -m bench ingest` only one."""

from __future__ import annotations

import importlib
import sys

from rich.console import Console

BENCHMARKS = [
    "ingest",
    "agent_overhead",
    "logsift",
    "pool_restart",
    "pool_scaling",
    "loadgen_cpu",
    "loadgen_http",
    "autoscale_sim",
    "autoscale_reaction",
    "autoscale_live",
    "coord",
    "vm_sim",
]


def main(argv: list[str]) -> int:
    console = Console()
    chosen = argv or BENCHMARKS
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        console.print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in chosen:
        console.rule(f"bench: {name}")
        path = importlib.import_module(f"bench.{name}").run()
        console.print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
