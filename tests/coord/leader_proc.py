"""A stand-in controller for the failover tests: it runs for leadership with loadpilot's coord code and, while
it leads, applies one action per tick to a real actuator, the pool's desired size (act.pool.control.scale),
carrying its epoch; the pool's fence refuses an older epoch.

Each event is one JSON line on --events: started, leading (epoch), acting (epoch: an action begins), applied
(epoch, size), refused (epoch, newest), lost. A file `pause-<member>` in the state dir makes it SIGSTOP itself
right after it has checked that it leads and before it acts: the worst moment for a pause, which only the fence
can catch.

    python -m tests.coord.leader_proc --url URL --namespace NS --member ID --state DIR --events LOG
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from loadpilot.act.pool.control import scale
from loadpilot.act.pool.state import PoolPaths
from loadpilot.config import parse_config
from loadpilot.coord import CONTROLLERS, CoordSettings, leadership
from loadpilot.coord.backend import connect
from loadpilot.coord.membership import Membership
from loadpilot.coord.records import open_records
from loadpilot.errors import StaleEpochError, TemporaryError
from tests.coord.member_proc import member_parser, stop_on_sigterm

POOL = "fenced"


def main(argv: list[str]) -> int:
    parser = member_parser("a stand-in controller acting on a fenced pool while it leads", timeout=3.0)
    parser.add_argument("--state", required=True, help="the state directory of the fenced pool")
    parser.add_argument("--events", required=True, help="where to log events, one JSON line each")
    parser.add_argument("--tick", type=float, default=0.5)
    args = parser.parse_args(argv)
    settings = CoordSettings(url=args.url, namespace=args.namespace, member_timeout_s=args.timeout, tick_s=args.tick)
    state = Path(args.state)
    config = parse_config(
        {"state_dir": str(state), "pools": [{"name": POOL, "command": "app {fd} {port}", "min": 0, "max": 100}]}
    )
    pool, paths = config.pool(POOL), PoolPaths.of(state, POOL)
    pause = state / f"pause-{args.member}"
    stopping = stop_on_sigterm()

    coordinator = connect(settings, args.member)
    records = open_records(settings, coordinator)
    members = Membership(coordinator, settings.group(CONTROLLERS), args.member, {"kind": "controller"}, records)
    members.join()
    leader = leadership(settings, coordinator, records, args.member)
    with open(args.events, "a", encoding="utf-8") as out:

        def event(kind: str, **fields: object) -> None:
            out.write(json.dumps({"t": time.time(), "event": kind, "member": args.member, **fields}) + "\n")
            out.flush()

        event("started")
        leading, actions = False, 0
        while not stopping.wait(args.tick):
            with contextlib.suppress(TemporaryError):
                members.tick()
            now_leading = leader.tick()
            if now_leading and not leading:
                event("leading", epoch=leader.epoch)
            if leading and not now_leading:
                event("lost", epoch=leader.epoch)
            leading = now_leading
            if not leader.is_leader():
                continue
            if pause.exists():
                pause.unlink()
                event("pausing", epoch=leader.epoch)
                os.kill(os.getpid(), signal.SIGSTOP)  # between the check and the action
                event("resumed", epoch=leader.epoch)
            actions += 1
            event("acting", epoch=leader.epoch)
            try:
                scale(paths, pool, actions % 10 + 1, epoch=leader.epoch)
            except StaleEpochError as exc:
                event("refused", epoch=exc.epoch, newest=exc.newest)
            else:
                event("applied", epoch=leader.epoch, size=actions % 10 + 1)
        leader.resign()
        members.leave()
    coordinator.stop()
    records.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
