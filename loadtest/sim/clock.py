"""The simulator's wire clock: the timestamp every generated message carries.

Normally the wall clock. With *past days* (``SimConfig.past_days_ms``, the demo's
``--days``) it first runs through those UTC days, each at ``past_speed`` times the wall
clock (1440: a day a minute), one after the other, then joins the wall clock: a collector
started with the simulator stores those days as if it had been running then, so they can be
sealed, rolled over and archived at once. The market model's own clock follows the wire
clock while it does (expiries and listings happen on the days shown).
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class WireClock:
    wall_start_ms: int
    past_days_ms: tuple[int, ...] = ()
    """UTC midnights of the past days to run through, in order"""
    past_speed: float = 1440.0

    @property
    def past_wall_ms(self) -> float:
        """Wall milliseconds the past days take."""
        return len(self.past_days_ms) * DAY_MS / self.past_speed

    def now_ms(self, wall_ms: int) -> int:
        """The timestamp of a message generated at ``wall_ms``."""
        if not self.past_days_ms:
            return wall_ms
        elapsed = (wall_ms - self.wall_start_ms) * self.past_speed
        index = int(elapsed // DAY_MS)
        if index >= len(self.past_days_ms) or elapsed < 0:
            return wall_ms
        return self.past_days_ms[index] + int(elapsed - index * DAY_MS)

    def in_past(self, wall_ms: int) -> bool:
        return bool(self.past_days_ms) and wall_ms - self.wall_start_ms < self.past_wall_ms
