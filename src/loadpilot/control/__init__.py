"""The controller: the leader's level-triggered reconcile loop (observe -> decide -> act -> record).

- snapshot.py    a pool's readings, and the window arithmetic that makes a PoolView of them (pure)
- observe.py     readings taken on this machine: state.json and each worker's metrics, every tick
- actuate.py     the pool actuator call with the leader's epoch, its errors sorted into temporary and permanent
- retry.py       backoff between attempts after a temporary error
- events.py      the events recorded in the store (scale, hold, leadership)
- seat.py        membership and leadership among the controllers (loadpilot.coord)
- status.py      what a controller publishes for `loadpilot up`'s view (leader, epoch, flagged pools)
- controller.py  the loop itself
- view.py        `loadpilot up`'s live view (and its plain-lines fallback), the read side
"""
