"""The exceptions loadpilot raises; every message says what a user can do about it."""

from __future__ import annotations


class LoadpilotError(Exception):
    """Base of every error loadpilot raises on purpose."""


class TemporaryError(LoadpilotError):
    """Something failed that may work if tried again later (retry with backoff)."""


class PermanentError(LoadpilotError):
    """Something failed that will fail again the same way (give up, record an event)."""


class ConfigError(PermanentError):
    """The configuration is invalid; `problems` holds one `field: message` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class MissingDependencyError(PermanentError):
    """An optional dependency a plugin needs is not installed."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs an optional dependency: pip install 'loadpilot[{extra}]'")


class StaleEpochError(PermanentError):
    """An action carries a leadership epoch older than the newest one its target has seen: it comes from a leader
    that has been replaced (paused, cut off) and must not be applied."""

    def __init__(self, target: str, epoch: int, newest: int) -> None:
        self.target, self.epoch, self.newest = target, epoch, newest
        super().__init__(
            f"{target}: refused an action of leadership epoch {epoch}; epoch {newest} has acted here since "
            "(the sender is no longer the leader)"
        )
