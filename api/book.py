"""Order book reconstruction from stored book changes (pure).

Input: the rows of one instrument from its latest snapshot (``is_snapshot``) up to the
requested instant, ordered by (ts, change_id). The snapshot's levels start the book;
every later change sets a level's amount (``new``/``change``) or removes it (``delete``,
or an amount of 0). ``prev_change_id`` of each message must equal the previous message's
``change_id``; a mismatch is counted in ``sequence_breaks`` (the book may be wrong until
the next snapshot, which the collector requests on such a break).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BookRow:
    ts_us: int
    change_id: int
    prev_change_id: int | None
    is_snapshot: bool
    side: str
    action: str
    price: float
    amount: float


@dataclass(frozen=True, slots=True)
class Book:
    instrument: str
    snapshot_ts_us: int
    ts_us: int
    """Time of the last change applied."""
    change_id: int
    bids: list[tuple[float, float]]
    """(price, amount), best (highest) first."""
    asks: list[tuple[float, float]]
    """(price, amount), best (lowest) first."""
    changes_applied: int
    sequence_breaks: int


def reconstruct(instrument: str, rows: Iterable[BookRow], depth: int | None = None) -> Book | None:
    """The book after applying ``rows``; None when they hold no snapshot."""
    levels: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    snapshot_ts: int | None = None
    snapshot_id: int | None = None
    last_id: int | None = None
    last_ts = 0
    applied = breaks = 0
    for r in rows:
        if r.is_snapshot:
            if snapshot_id != r.change_id:
                levels = {"bid": {}, "ask": {}}
                snapshot_ts, snapshot_id = r.ts_us, r.change_id
            if r.amount > 0:
                levels[r.side][r.price] = r.amount
            last_id, last_ts = r.change_id, r.ts_us
            continue
        if snapshot_id is None or last_id is None:
            continue  # changes before the snapshot
        if r.change_id <= snapshot_id:
            continue
        if r.change_id != last_id:
            if r.prev_change_id is not None and r.prev_change_id != last_id:
                breaks += 1
            last_id = r.change_id
        last_ts = r.ts_us
        book = levels[r.side]
        if r.action == "delete" or r.amount == 0:
            book.pop(r.price, None)
        else:
            book[r.price] = r.amount
        applied += 1
    if snapshot_ts is None or last_id is None:
        return None
    bids = sorted(levels["bid"].items(), key=lambda kv: -kv[0])
    asks = sorted(levels["ask"].items(), key=lambda kv: kv[0])
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    return Book(instrument, snapshot_ts, last_ts, last_id, bids, asks, applied, breaks)
