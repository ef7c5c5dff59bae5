"""Journal records the collector writes itself: gap rows and backfilled trades.

Exchange frames are journaled before they are parsed; what the collector *derives*
while running — a gap it detected (disconnect, stale, book_seq, trade_seq, downtime,
rejected, and every later version of it: closed, backfilled) and the trades a backfill
fetched from the history API — is journaled too, as a *side record*, before it is
offered to the writer. So it follows the same contract as a frame: the checkpoint passes
it only once QuestDB acknowledged its rows, a crash or a QuestDB outage replays it from
the journal, and ``tickarchive journal export`` + ``tickarchive replay`` rebuild the
``gaps`` table and the backfilled trades as the live collector wrote them.

A side record is JSON, recognisable by its first bytes (``SIDE_PREFIX``) wherever the
connection id is not at hand (the replay format has none)::

    {"tickarchive_side":1,"gaps":[...],"trades":[...]}

written on connection ``SIDE_CONNECTION`` with the receive time of the last exchange
frame before it (so the journal's last-frame time, the start of a later downtime gap,
does not move).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from tickarchive.domain import Event, Gap, TradeTick

SIDE_CONNECTION: Final = "collector"
SIDE_PREFIX: Final = b'{"tickarchive_side":1,'


class _SideRecord(msgspec.Struct, gc=False):
    tickarchive_side: int
    gaps: list[Gap] = []
    trades: list[TradeTick] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_SideRecord)


def is_side_record(events: Sequence[object]) -> bool:
    """True when every one of ``events`` can be journaled as a side record."""
    return bool(events) and all(type(e) is Gap or type(e) is TradeTick for e in events)


def encode_side(events: Sequence[Event]) -> bytes:
    """The record of ``events`` (gaps and trades only; order kept within each kind)."""
    gaps = [e for e in events if type(e) is Gap]
    trades = [e for e in events if type(e) is TradeTick]
    if len(gaps) + len(trades) != len(events):
        raise TypeError("a side record holds only Gap and TradeTick events")
    body = _encoder.encode(_SideRecord(1, gaps, trades))
    assert body.startswith(SIDE_PREFIX)  # field order of _SideRecord
    return body


def decode_side(frame: bytes) -> list[Event] | None:
    """The events of a side record (gaps first, then trades); ``None`` if ``frame`` is
    not one; ``[]`` for a damaged one (it is then only counted by the caller)."""
    if not frame.startswith(SIDE_PREFIX):
        return None
    try:
        rec = _decoder.decode(frame)
    except msgspec.DecodeError:
        return []
    return [*rec.gaps, *rec.trades]
