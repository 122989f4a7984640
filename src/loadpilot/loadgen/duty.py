"""The duty controller: how much CPU the generator's own workers should burn to hold the machine at a target.

Pure arithmetic on readings it is given (no clock, no I/O), so it is tested against synthetic plants.

Each reading gives the machine's total utilisation and the generator's own share of it, both fractions 0..1 of
all the machine's cores, over the same interval. Everything else on the machine is then `other = total - own`,
which does not depend on how the workers responded to earlier commands. Two parts set the next command:

- feed-forward: own = target - other. Other is smoothed against tick noise, but a change larger than noise
  (`jump`) is taken at once, so the generator reacts within one reading when other work appears or goes away:
  that is what makes settling fast and backing off immediate.
- a PI loop on total's error corrects what the feed-forward misses (workers that deliver a little more or less
  than asked, /proc/stat's tick accounting). Anti-windup, three ways: the integral is clamped; it takes in at
  most `jump` of error per reading (larger errors are mostly transients the feed-forward is already correcting,
  while a steady mismatch, however large, is still removed at that rate); and it stops integrating while the
  command is saturated in the error's direction (conditional integration). So a long spell at 0 (other work
  alone above the target) or at full duty (target out of reach) leaves nothing to unwind, and the loop recovers
  at once after one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gains:
    """The controller's tuning; the defaults suit readings every 0.1-0.5 s.

    kp: proportional gain on total's error (the feed-forward already moves by the whole error, so this is small);
    ki: integral gain, per second; smoothing: weight of the newest reading in the other-load average (1 = none);
    jump: a change of other load larger than this is real, not noise (also the most error the integral takes in);
    integral_limit: the most the integral may add or remove, as a share of the machine.
    """

    kp: float = 0.2
    ki: float = 2.0
    smoothing: float = 0.5
    jump: float = 0.08
    integral_limit: float = 0.3


class DutyController:
    """Turns readings of (total, own) into the duty every worker should run at next."""

    def __init__(self, target: float, capacity: float, gains: Gains | None = None) -> None:
        """`target`: total utilisation to hold (0..1); `capacity`: the share of the machine the workers reach at
        full duty (workers / cores)."""
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target must be within 0..1, got {target}")
        if capacity <= 0.0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.target = target
        self.capacity = capacity
        self.gains = gains or Gains()
        self.other: float | None = None  # smoothed estimate of everyone else's share
        self.integral = 0.0
        self.command = 0.0  # own share asked for, 0..capacity

    @property
    def duty(self) -> float:
        """The share of each slice a worker should be busy, 0..1."""
        return self.command / self.capacity

    def update(self, total: float, own: float, dt: float) -> float:
        """Take one reading (total and own share over the last `dt` seconds) and return the next duty (0..1)."""
        g = self.gains
        other = max(0.0, total - own)
        if self.other is None or abs(other - self.other) > g.jump:
            self.other = other
        else:
            self.other += g.smoothing * (other - self.other)
        error = self.target - total
        feed_forward = self.target - self.other
        integral = self.integral + g.ki * max(-g.jump, min(g.jump, error)) * dt
        unclamped = feed_forward + g.kp * error + integral
        saturated_high = unclamped > self.capacity and error > 0
        saturated_low = unclamped < 0.0 and error < 0
        if not (saturated_high or saturated_low):
            self.integral = max(-g.integral_limit, min(g.integral_limit, integral))
        self.command = max(0.0, min(self.capacity, feed_forward + g.kp * error + self.integral))
        return self.duty
