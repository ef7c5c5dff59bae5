"""Sequence tracking (pure): book change-id chains and per-instrument trade_seq.

* ``BookSequence``: Deribit book messages are in order iff ``prev_change_id`` equals the
  previous message's ``change_id`` for that instrument (ids are *not* consecutive: never
  check +1). A break opens a ``book_seq`` gap and puts the instrument in *resync*: later
  changes are ignored for checking until a new snapshot (after a resubscribe) arrives,
  which closes the gap (``unrecoverable``: missed book changes cannot be fetched).
* ``TradeSequence``: ``trade_seq`` is consecutive per instrument. A jump opens a
  ``trade_seq`` gap with the missing seq bounds (to be backfilled from history); a seq at
  or below the last one is a duplicate (combo legs seen twice, backfill overlap) and is
  ignored. Its state is meant to outlive reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from tickarchive.domain import Gap, GapKind, GapStatus, TradeTick


class BookIds(msgspec.Struct, frozen=True, gc=False):
    """The sequence part of one book message (also present for an empty book)."""

    instrument: str
    ts_us: int
    change_id: int
    prev_change_id: int | None
    is_snapshot: bool


@dataclass(slots=True)
class _BookState:
    last_change_id: int
    last_ts_us: int
    gap: Gap | None = None
    """The open gap while resyncing."""


@dataclass(frozen=True, slots=True)
class BookBreak:
    gap: Gap
    instrument: str


class BookSequence:
    __slots__ = ("_books", "_gap_starts", "connection")

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self._books: dict[str, _BookState] = {}
        self._gap_starts: dict[str, int] = {}

    def check(self, ids: BookIds) -> Gap | None:
        """Feed one book message; return a gap opened (end None) or closed (end set), else None."""
        st = self._books.get(ids.instrument)
        if ids.is_snapshot:
            self._books[ids.instrument] = _BookState(ids.change_id, ids.ts_us)
            if st is not None and st.gap is not None:
                g = st.gap
                return Gap(g.kind, g.instrument, g.start_us, ids.ts_us, g.cause, g.connection, GapStatus.UNRECOVERABLE)
            return None
        if st is None:
            # a change before any snapshot (e.g. replay started mid-stream): start the chain
            self._books[ids.instrument] = _BookState(ids.change_id, ids.ts_us)
            return None
        if st.gap is not None:
            return None  # resyncing: in-flight changes until the new snapshot
        if ids.prev_change_id != st.last_change_id:
            st.gap = Gap(
                GapKind.BOOK_SEQ,
                ids.instrument,
                _unique_start(self._gap_starts, ids.instrument, st.last_ts_us),
                None,
                f"book prev_change_id {ids.prev_change_id} != last change_id {st.last_change_id}",
                self.connection,
                GapStatus.OPEN,
            )
            return st.gap
        st.last_change_id = ids.change_id
        st.last_ts_us = ids.ts_us
        return None

    def resyncing(self, instrument: str) -> bool:
        st = self._books.get(instrument)
        return st is not None and st.gap is not None

    def last_change_id(self, instrument: str) -> int | None:
        st = self._books.get(instrument)
        return None if st is None else st.last_change_id

    def reset(self) -> None:
        """Forget every chain (a reconnect: new snapshots come). Open gaps are dropped:
        the connection's own gap covers them."""
        self._books.clear()

    def forget(self, instrument: str) -> None:
        self._books.pop(instrument, None)
        self._gap_starts.pop(instrument, None)


@dataclass(frozen=True, slots=True)
class TradeGap:
    gap: Gap
    first_missing_seq: int
    last_missing_seq: int


class TradeSequence:
    __slots__ = ("_gap_starts", "_last", "connection", "duplicates")

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self._last: dict[str, tuple[int, int]] = {}
        self._gap_starts: dict[str, int] = {}
        self.duplicates = 0

    def check(self, t: TradeTick) -> TradeGap | None:
        """Feed one trade; return the gap before it, if any."""
        last = self._last.get(t.instrument)
        seq = t.trade_seq
        if last is None or seq == last[0] + 1:
            self._last[t.instrument] = (seq, t.ts_us)
            return None
        if seq <= last[0]:
            self.duplicates += 1
            return None
        self._last[t.instrument] = (seq, t.ts_us)
        start = _unique_start(self._gap_starts, t.instrument, last[1])
        gap = Gap(
            GapKind.TRADE_SEQ,
            t.instrument,
            start,
            t.ts_us,
            f"trade_seq {last[0]} -> {seq} (missing {last[0] + 1}..{seq - 1})",
            self.connection,
            GapStatus.OPEN,
        )
        return TradeGap(gap, last[0] + 1, seq - 1)

    def last_seq(self, instrument: str) -> int | None:
        got = self._last.get(instrument)
        return None if got is None else got[0]

    def seed(self, instrument: str, trade_seq: int, ts_us: int) -> None:
        """Start from a known last trade (e.g. the newest stored row at start-up)."""
        self._last[instrument] = (trade_seq, ts_us)

    def forget(self, instrument: str) -> None:
        self._last.pop(instrument, None)
        self._gap_starts.pop(instrument, None)


def _unique_start(starts: dict[str, int], instrument: str, start_us: int) -> int:
    """Gaps are keyed by (start, instrument, kind): two gaps of one instrument that would
    start in the same µs (trades share millisecond timestamps) are moved 1 µs apart so
    that the second never overwrites the first."""
    prev = starts.get(instrument)
    if prev is not None and start_us <= prev:
        start_us = prev + 1
    starts[instrument] = start_us
    return start_us
