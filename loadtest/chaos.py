"""Chaos modes of a load run and their schedule (pure: mode + duration -> timed actions).

=================== ====================================================================
mode                what happens (times as fractions of ``--duration``)
=================== ====================================================================
``disconnects``     the simulator drops one connection every 4 s
``malformed``       5 frames that are not valid JSON on every connection every 5 s
``stale``           one connection silenced for 8 s at 0.2 (the stale watchdog fires)
``questdb-restart`` QuestDB stopped gracefully at 0.3 and started 20 s later
``questdb-kill``    QuestDB SIGKILLed at 0.45 (no shutdown hook) and started again at once
                    on the same ports
``collector-kill``  the collector SIGKILLed at 0.5 and started again
``journal-corrupt`` at 0.55 QuestDB's acknowledgements are held (the chaos proxy answers 503
                    to every write) for 4 s (0.1 in short runs), so the journal grows past the checkpoint;
                    then a length field and a payload byte are flipped in a sealed segment
                    and in the active one (``loadtest.chaos_journal``), the collector is
                    SIGKILLed, the hold released and the collector started again
``disk-full``       the journal's own small file system (``loadtest.chaos_disk``) is filled
                    to the last block at 0.7 and freed 5 s (0.1 in short runs) later
``poison``          every 10 s from 3 s one connection gets 4 ticker frames whose values
                    no store accepts (``poison`` fault of the simulator)
``questdb-reject``  from 0.1 to 0.25 the chaos proxy in front of QuestDB answers 400 to
                    some writes (once), 503 to others, and refuses a few rows for good
                    (``loadtest.chaos_proxy``)
=================== ====================================================================

``all`` is every mode at once. Nothing happens in the last 15 % of the run, so the
collector settles before the quiesce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tickarchive.loadtest.errors import ChaosError

MODES: Final = (
    "disconnects",
    "questdb-restart",
    "collector-kill",
    "stale",
    "malformed",
    "questdb-kill",
    "journal-corrupt",
    "disk-full",
    "poison",
    "questdb-reject",
)
ALL: Final = "all"
QUESTDB_DOWN_S: Final = 20.0
DISCONNECT_EVERY_S: Final = 4.0
MALFORMED_EVERY_S: Final = 5.0
STALE_CONNECTION_S: Final = 5.0
"""The collector's ``deribit.stale_connection_s`` in a ``stale`` run (default 15 s)."""
SILENCE_S: Final = 8.0
HOLD_S: Final = 4.0
"""``journal-corrupt``: how long QuestDB's acknowledgements are held before the damage."""
DISK_FULL_S: Final = 5.0
POISON_EVERY_S: Final = 10.0
REJECT_FROM: Final = 0.1
REJECT_UNTIL: Final = 0.25
MIN_DURATION_S: Final = 10.0
PROXIED: Final = frozenset({"questdb-reject", "journal-corrupt"})
"""Modes that put the chaos proxy between the collector and QuestDB."""


@dataclass(frozen=True, slots=True, order=True)
class Action:
    at_s: float
    """Seconds after the measurement started."""
    kind: str
    """drop, questdb_down, questdb_up, questdb_kill, collector_kill, silence, malformed,
    writes_hold, journal_corrupt, disk_fill, disk_release, poison, reject_on, reject_off."""


def validate(modes: tuple[str, ...], duration_s: float) -> tuple[str, ...]:
    """The modes to run (``all`` expanded, duplicates dropped), or ``ChaosError``."""
    out: list[str] = []
    for m in modes:
        if m == ALL:
            out.extend(MODES)
        elif m in MODES:
            out.append(m)
        else:
            raise ChaosError(f"unknown chaos mode {m!r}; known: {', '.join(MODES)}, {ALL}")
    if "questdb-restart" in out and duration_s < QUESTDB_DOWN_S + 10:
        raise ChaosError(f"questdb-restart needs --duration >= {QUESTDB_DOWN_S + 10:g} s")
    for m in ("journal-corrupt", "disk-full", "questdb-kill"):
        if m in out and duration_s < MIN_DURATION_S:
            raise ChaosError(f"{m} needs --duration >= {MIN_DURATION_S:g} s")
    return tuple(dict.fromkeys(out))


def schedule(modes: tuple[str, ...], duration_s: float) -> list[Action]:
    """Every chaos action of the run, sorted by time."""
    d = duration_s
    end = d * 0.85
    out: list[Action] = []

    def every(first: float, step: float, kind: str) -> None:
        t = first
        while t < end:
            out.append(Action(t, kind))
            t += step

    if "disconnects" in modes:
        every(2.0, DISCONNECT_EVERY_S, "drop")
    if "malformed" in modes:
        every(1.0, MALFORMED_EVERY_S, "malformed")
    if "poison" in modes:
        every(3.0, POISON_EVERY_S, "poison")
    if "collector-kill" in modes:
        out.append(Action(d * 0.5, "collector_kill"))
    if "questdb-restart" in modes:
        t0 = max(2.0, d * 0.3)
        out.append(Action(t0, "questdb_down"))
        out.append(Action(t0 + QUESTDB_DOWN_S, "questdb_up"))
    if "questdb-kill" in modes:
        out.append(Action(d * 0.45, "questdb_kill"))
    if "stale" in modes:
        out.append(Action(d * 0.2, "silence"))
    if "questdb-reject" in modes:
        out.append(Action(d * REJECT_FROM, "reject_on"))
        out.append(Action(d * REJECT_UNTIL, "reject_off"))
    if "journal-corrupt" in modes:
        out.append(Action(d * 0.55, "writes_hold"))
        out.append(Action(d * 0.55 + min(HOLD_S, d * 0.1), "journal_corrupt"))
    if "disk-full" in modes:
        out.append(Action(d * 0.7, "disk_fill"))
        out.append(Action(d * 0.7 + min(DISK_FULL_S, d * 0.1), "disk_release"))
    return sorted(out)
