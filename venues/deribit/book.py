"""Book payloads → ``BookChange`` rows and the message's ``BookIds`` (pure; docs/collector.md).

* ``book.{instrument}.{interval}``: one ``BookChange`` per level. ``type == "snapshot"``
  (or no ``type`` and no ``prev_change_id``, the pre-2021 form) is a full snapshot:
  ``is_snapshot=True``, ``action=SNAPSHOT``, ``prev_change_id=None`` (a
  ``prev_change_id`` Deribit sometimes puts on a snapshot is not a chain link). Changes
  carry ``[action, price, amount]``, action new/change/delete (delete amount 0).
* ``book.{instrument}.{group}.{depth}.{interval}`` (grouped): ``[price, amount]``
  entries, a full top-N view with only ``change_id``: every message is a snapshot.
* A snapshot side with no level yields one ``action=EMPTY`` marker (price and amount
  0.0): a book rebuilt from the table is reset by every snapshot, the empty snapshot of
  a never-quoted book (``change_id`` 0) or of a resubscribe included.
* ``channel_interval`` is the channel's interval (``raw``, ``100ms``, ``agg2``).
"""

from __future__ import annotations

from typing import Final

from tickarchive.domain import BookAction, BookChange, Event, Side
from tickarchive.venues.deribit import wire
from tickarchive.venues.deribit.sequence import BookIds


class BadBookData(ValueError):
    """A book payload that decoded but makes no sense (an unknown action)."""


_ACTIONS: Final = {"new": BookAction.NEW, "change": BookAction.CHANGE, "delete": BookAction.DELETE}
_SNAPSHOT = BookAction.SNAPSHOT
_EMPTY = BookAction.EMPTY
_BID = Side.BID
_ASK = Side.ASK


def is_snapshot(b: wire.BookWire) -> bool:
    return b.type == "snapshot" or (b.type is None and b.prev_change_id is None)


def _levels(
    out: list[Event],
    entries: list[tuple[str, float, float]],
    side: Side,
    inst: str,
    ts_us: int,
    recv_ts_us: int,
    change_id: int,
    prev: int | None,
    snap: bool,
    interval: str | None,
) -> None:
    actions = _ACTIONS
    for a, price, amount in entries:
        if snap:
            action = _SNAPSHOT
        else:
            got = actions.get(a)
            if got is None:
                raise BadBookData(f"unknown book action {a!r}")
            action = got
        out.append(BookChange(inst, ts_us, recv_ts_us, change_id, prev, snap, side, action, price, amount, interval))


def _empty(out: list[Event], side: Side, inst: str, ts_us: int, recv_ts_us: int, change_id: int,
           interval: str | None) -> None:
    out.append(BookChange(inst, ts_us, recv_ts_us, change_id, None, True, side, _EMPTY, 0.0, 0.0, interval))


def book_from_wire(b: wire.BookWire, recv_ts_us: int, interval: str | None = None) -> list[Event]:
    """The rows of a decoded ``book.{instrument}.{interval}`` payload."""
    snap = is_snapshot(b)
    prev = None if snap else b.prev_change_id
    out: list[Event] = []
    ts_us = b.timestamp * 1000
    inst = b.instrument_name
    cid = b.change_id
    if b.bids:
        _levels(out, b.bids, _BID, inst, ts_us, recv_ts_us, cid, prev, snap, interval)
    elif snap:
        _empty(out, _BID, inst, ts_us, recv_ts_us, cid, interval)
    if b.asks:
        _levels(out, b.asks, _ASK, inst, ts_us, recv_ts_us, cid, prev, snap, interval)
    elif snap:
        _empty(out, _ASK, inst, ts_us, recv_ts_us, cid, interval)
    return out


def book_ids(b: wire.BookWire) -> BookIds:
    snap = is_snapshot(b)
    return BookIds(b.instrument_name, b.timestamp * 1000, b.change_id, None if snap else b.prev_change_id, snap)


def grouped_book_from_wire(b: wire.GroupedBookWire, recv_ts_us: int, interval: str | None = None) -> list[Event]:
    """A grouped book message: every level is a snapshot level (empty sides marked)."""
    out: list[Event] = []
    ts_us = b.timestamp * 1000
    inst = b.instrument_name
    cid = b.change_id
    for entries, side in ((b.bids, _BID), (b.asks, _ASK)):
        if entries:
            for price, amount in entries:
                out.append(BookChange(inst, ts_us, recv_ts_us, cid, None, True, side, _SNAPSHOT, price, amount,
                                      interval))
        else:
            _empty(out, side, inst, ts_us, recv_ts_us, cid, interval)
    return out
