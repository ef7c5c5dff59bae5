"""Which recorded gaps cost which (instrument, table) how many seconds (pure).

``/coverage`` reports, per day, instrument and table, ``gap_seconds``: the time of the day
in which that table may be missing rows of that instrument. A gap counts only where it
really took data away:

=============  =====================  ===========================================================
kind           instrument             tables it affects
=============  =====================  ===========================================================
downtime       ``*`` (collector)      every table of every instrument
disconnect,    ``*`` (connection C)   quotes and book changes of the instruments C carries; trades
stale                                 of every instrument when C carries the trades channels
stale          one instrument         its quotes and book changes
rejected       one instrument         its quotes and book changes
rejected       ``trades.<kind>.<cur>  trades of the instruments of that currency
               .<interval>``
book_seq       one instrument         its book changes (the book is unreliable until a snapshot)
trade_seq      one instrument         its trades
=============  =====================  ===========================================================

A gap whose status is ``backfilled`` took nothing from **trades**: the backfill inserted
every trade of its window from the exchange's history. Quotes and book changes cannot be
backfilled, so the same gap still counts for them. Overlapping gaps count once (the union
of their intervals), clipped to the day; an open gap runs to ``now`` (or the day's end).

Which connection carries an instrument comes from the venue's channel plan
(``ChannelPlan.shard``) under the current settings; an instrument the map cannot place is
charged every connection's gaps (the conservative answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tickarchive.domain import ALL_INSTRUMENTS

US_PER_S = 1_000_000

ALL_TABLES = frozenset({"quotes", "trades", "book_changes"})
BOOK_AND_QUOTES = frozenset({"quotes", "book_changes"})


@dataclass(frozen=True, slots=True)
class GapSpan:
    start_us: int
    end_us: int | None
    instrument: str
    kind: str
    connection: str
    status: str


@dataclass(frozen=True, slots=True)
class Connections:
    """Where instruments and the venue-wide channels are carried."""

    of_instrument: Callable[[str], str | None]
    """The connection carrying an instrument's own channels (None: unknown)."""
    global_: frozenset[str]
    """Connections carrying venue-wide channels (trades, instrument states)."""


UNKNOWN = Connections(lambda name: None, frozenset())


def _currency(instrument: str) -> str:
    return instrument.split("-", 1)[0]


def affects(gap: GapSpan, instrument: str, table: str, conns: Connections) -> bool:
    """Did ``gap`` take rows of ``table`` for ``instrument`` away (before any backfill)?"""
    kind, who = gap.kind, gap.instrument
    if kind == "downtime":
        return who in (ALL_INSTRUMENTS, instrument)
    if who == ALL_INSTRUMENTS:
        if kind not in ("disconnect", "stale", "rejected"):
            return False
        if table == "trades":
            return not conns.global_ or gap.connection in conns.global_
        carrier = conns.of_instrument(instrument)
        return carrier is None or carrier == gap.connection
    if kind == "rejected" and who.startswith("trades."):
        parts = who.split(".")
        return table == "trades" and len(parts) >= 3 and _currency(instrument) == parts[2]
    if who != instrument:
        return False
    if kind == "book_seq":
        return table == "book_changes"
    if kind == "trade_seq":
        return table == "trades"
    if kind in ("stale", "rejected", "disconnect"):
        return table in BOOK_AND_QUOTES
    return table in ALL_TABLES


def recovered(gap: GapSpan, table: str) -> bool:
    """A backfilled gap lost no trades."""
    return table == "trades" and gap.status == "backfilled"


def union_seconds(spans: Iterable[tuple[int, int]]) -> float:
    total = 0
    end = None
    for lo, hi in sorted(spans):
        if hi <= lo:
            continue
        if end is None or lo > end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total / US_PER_S


def gap_seconds(
    gaps: Sequence[GapSpan], instrument: str, table: str, lo_us: int, hi_us: int, now_us: int, conns: Connections
) -> float:
    """Seconds of [lo, hi) in which ``table`` may lack rows of ``instrument``."""
    spans = []
    for g in gaps:
        if not affects(g, instrument, table, conns) or recovered(g, table):
            continue
        stop = min(g.end_us if g.end_us is not None else min(now_us, hi_us), hi_us)
        start = max(g.start_us, lo_us)
        if stop > start:
            spans.append((start, stop))
    return union_seconds(spans)
