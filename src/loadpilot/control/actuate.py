"""The controller's one actuator call: apply a ScaleTo stamped with the leader's epoch, errors sorted.

act.pool.control.scale writes desired.json under the pool's epoch fence (the action's epoch). What can go wrong
falls in loadpilot's two kinds, so the controller knows whether to retry: a stale epoch (StaleEpochError: a newer
leader has acted) and a size outside the bounds are permanent; an unreadable fence is temporary; a raw OSError
from writing the file is sorted here by what it says (a full disk may clear up, a read-only or wrongly shaped
state dir will not).
"""

from __future__ import annotations

import errno

from loadpilot.act.pool import control
from loadpilot.act.pool.state import Desired, PoolPaths
from loadpilot.config import PoolConfig
from loadpilot.errors import PermanentError, TemporaryError
from loadpilot.model import ScaleTo

# Errors that will happen again the same way until someone changes the files or their permissions.
PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG})


def apply_scale(paths: PoolPaths, pool: PoolConfig, action: ScaleTo) -> Desired:
    """Ask the pool's supervisor for `action.size` workers on behalf of leadership `action.epoch`.

    Raises StaleEpochError (permanent) when a newer epoch has acted on the pool, PermanentError for what will not
    get better by itself, TemporaryError for what may.
    """
    if action.pool != pool.name:
        raise PermanentError(f"a ScaleTo for pool {action.pool!r} was sent to pool {pool.name!r}'s actuator")
    try:
        return control.scale(paths, pool, action.size, epoch=action.epoch)
    except OSError as exc:
        what = f"pool {pool.name!r}: cannot write {paths.desired}: {exc.strerror or exc}"
        if exc.errno in PERMANENT_ERRNOS:
            raise PermanentError(what) from exc
        raise TemporaryError(what) from exc
