"""A light agent for the partition scenario: loadpilot's own coordination code, synthetic shared resources,
and a real SQLite store, without HTTP in between (2,000 probes a second would measure the machine, not the
protocol).

Every slot (1 s) it asks SharedWork what to poll, "polls" it (one sample per resource, stamped in the slot),
writes the samples to the store, logs the resource indices it polled, then confirms. If it wakes late it
handles each missed slot in order, as if it had polled on time: scheduling delays on a busy test machine are not
what is under test. SIGTERM drains (make-before-break) and exits; SIGKILL is SIGKILL.

    python -m tests.coord.agent_proc --url URL --namespace NS --member ID --store DB --polls LOG [--replicas 2]
"""

from __future__ import annotations

import logging
import math
import sys
import time
import uuid

from loadpilot.coord import CoordSettings, SharedWork
from loadpilot.model import Batch, Sample
from loadpilot.store.sqlite import SQLiteStore
from tests.coord.member_proc import member_parser, stop_on_sigterm

METRIC = "probe.up"


def keys_of(n: int) -> list[str]:
    """The shared resources: res/0000 ... res/<n-1>."""
    return [f"res/{i:04d}" for i in range(n)]


def main(argv: list[str]) -> int:
    parser = member_parser("a light agent polling its share of synthetic shared resources", timeout=4.0)
    parser.add_argument("--store", required=True, help="the SQLite store's file")
    parser.add_argument("--polls", required=True, help="where to log what was polled in each slot")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.member} %(levelname)s %(message)s")
    stopping = stop_on_sigterm()
    settings = CoordSettings(
        url=args.url,
        namespace=args.namespace,
        member_timeout_s=args.timeout,
        tick_s=args.interval,
        replicas=args.replicas,
        drain_timeout_s=30.0,
    )
    keys = keys_of(args.resources)
    index = {k: i for i, k in enumerate(keys)}
    store = SQLiteStore(f"sqlite:///{args.store}", synchronous="normal")
    shared = SharedWork(settings, args.member)
    shared.start(keys)
    interval = args.interval
    next_slot = math.floor(time.time() / interval) + 1
    drain_deadline = math.inf
    with open(args.polls, "a", encoding="utf-8") as polls:
        while not (shared.draining and (shared.handed_over or time.monotonic() > drain_deadline)):
            time.sleep(max(0.0, next_slot * interval - time.time()))
            now = time.time()
            slot = math.floor(now / interval)
            if slot < next_slot:
                continue
            for s in range(next_slot, slot + 1):
                plan = shared.plan(keys, s)
                stamp = s * interval + interval / 2
                samples = tuple(Sample(k, METRIC, 1.0, stamp, "", args.member) for k in sorted(plan.polling))
                store.write_batch(Batch(uuid.uuid4().hex, args.member, interval, samples))
                polls.write(f"{s}\t{','.join(str(index[k]) for k in sorted(plan.polling))}\n")
                polls.flush()
                shared.confirm(plan, now)
            next_slot = slot + 1
            if stopping.is_set() and not shared.draining:
                shared.drain()
                drain_deadline = time.monotonic() + settings.drain_timeout_s
    logging.info("handed over: %s; leaving", shared.handed_over)
    shared.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
