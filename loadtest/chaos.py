"""Chaos modes of a load run and their schedule (pure: mode + duration -> timed actions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tickarchive.loadtest.errors import ChaosError

MODES: Final = ("disconnects", "questdb-restart", "collector-kill", "stale", "malformed")
QUESTDB_DOWN_S: Final = 20.0
DISCONNECT_EVERY_S: Final = 4.0
MALFORMED_EVERY_S: Final = 5.0
STALE_CONNECTION_S: Final = 5.0
"""The collector's ``deribit.stale_connection_s`` in a ``stale`` run (default 15 s)."""
SILENCE_S: Final = 8.0


@dataclass(frozen=True, slots=True, order=True)
class Action:
    at_s: float
    """Seconds after the measurement started."""
    kind: str
    """drop, questdb_down, questdb_up, collector_kill, silence, malformed."""


def validate(modes: tuple[str, ...], duration_s: float) -> tuple[str, ...]:
    for m in modes:
        if m not in MODES:
            raise ChaosError(f"unknown chaos mode {m!r}; known: {', '.join(MODES)}")
    if "questdb-restart" in modes and duration_s < QUESTDB_DOWN_S + 10:
        raise ChaosError(f"questdb-restart needs --duration >= {QUESTDB_DOWN_S + 10:g} s")
    return tuple(dict.fromkeys(modes))


def schedule(modes: tuple[str, ...], duration_s: float) -> list[Action]:
    """Every chaos action of the run, sorted by time. Nothing happens in the last 15 %
    of the run, so the collector settles before the quiesce."""
    end = duration_s * 0.85
    out: list[Action] = []
    if "disconnects" in modes:
        t = 2.0
        while t < end:
            out.append(Action(t, "drop"))
            t += DISCONNECT_EVERY_S
    if "malformed" in modes:
        t = 1.0
        while t < end:
            out.append(Action(t, "malformed"))
            t += MALFORMED_EVERY_S
    if "collector-kill" in modes:
        out.append(Action(duration_s * 0.5, "collector_kill"))
    if "questdb-restart" in modes:
        t0 = max(2.0, duration_s * 0.3)
        out.append(Action(t0, "questdb_down"))
        out.append(Action(t0 + QUESTDB_DOWN_S, "questdb_up"))
    if "stale" in modes:
        out.append(Action(duration_s * 0.2, "silence"))
    return sorted(out)
