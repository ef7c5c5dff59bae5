"""Sequence tracking (pure): book change-id chains and per-instrument trade_seq.

* ``BookSequence``: Deribit book messages are in order iff ``prev_change_id`` equals the
  previous message's ``change_id`` for that instrument (ids are *not* consecutive: one
  counter per currency, so a book's steps are of any size; never check +1). A message
  whose ``change_id`` is not above the last one seen is a duplicate (a re-delivered
  notification), counted and not a gap. A break opens a ``book_seq`` gap from the last
  good message; the chain then continues from the message after the break, so a second
  break before the resubscribe's snapshot is a second gap (replaying a capture, where no
  snapshot ever comes, finds every break). A new snapshot closes the instrument's open
  gaps (``unrecoverable``: missed book changes cannot be fetched).
* ``TradeSequence``: ``trade_seq`` is consecutive per instrument. A jump opens a
  ``trade_seq`` gap with the missing seq bounds (to be backfilled from history); a seq at
  or below the last one is a duplicate (combo legs seen twice, backfill overlap) and is
  ignored. Its state is meant to outlive reconnects. The legs a combo trade carries are
  not checked (``sequenced_trades``): they are copies of the legs' own trades.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

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
    gaps: list[Gap] = field(default_factory=list)
    """The gaps opened since the last snapshot (open until the next one)."""


_NO_GAPS: Final[tuple[Gap, ...]] = ()


@dataclass(frozen=True, slots=True)
class BookBreak:
    gap: Gap
    instrument: str


class BookSequence:
    __slots__ = ("_books", "_gap_starts", "connection", "duplicates")

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self._books: dict[str, _BookState] = {}
        self._gap_starts: dict[str, int] = {}
        self.duplicates = 0
        """Book messages seen again (``change_id`` not above the last one)."""

    def check(self, ids: BookIds) -> Sequence[Gap]:
        """Feed one book message; return the gaps it opened (end None) or closed (end set)."""
        st = self._books.get(ids.instrument)
        if ids.is_snapshot:
            self._books[ids.instrument] = _BookState(ids.change_id, ids.ts_us)
            if st is not None and st.gaps:
                return [
                    Gap(g.kind, g.instrument, g.start_us, ids.ts_us, g.cause, g.connection, GapStatus.UNRECOVERABLE)
                    for g in st.gaps
                ]
            return _NO_GAPS
        if st is None:
            # a change before any snapshot (e.g. replay started mid-stream): start the chain
            self._books[ids.instrument] = _BookState(ids.change_id, ids.ts_us)
            return _NO_GAPS
        if ids.prev_change_id == st.last_change_id:
            st.last_change_id = ids.change_id
            st.last_ts_us = ids.ts_us
            return _NO_GAPS
        if ids.change_id <= st.last_change_id:
            self.duplicates += 1
            return _NO_GAPS
        gap = Gap(
            GapKind.BOOK_SEQ,
            ids.instrument,
            _unique_start(self._gap_starts, ids.instrument, st.last_ts_us),
            None,
            f"book prev_change_id {ids.prev_change_id} != last change_id {st.last_change_id}",
            self.connection,
            GapStatus.OPEN,
        )
        st.gaps.append(gap)
        st.last_change_id = ids.change_id
        st.last_ts_us = ids.ts_us
        return (gap,)

    def advance(self, instrument: str, change_id: int, ts_us: int) -> None:
        """What ``check`` does with a message that continues ``instrument``'s chain (its
        ``prev_change_id`` is the last ``change_id``): replay's bulk path skips the call
        for runs of such messages and sets the state of the last one it skipped."""
        st = self._books[instrument]
        st.last_change_id = change_id
        st.last_ts_us = ts_us

    def continue_chains(
        self, instruments: Sequence[str], prev_change_ids: Sequence[int], change_ids: Sequence[int],
        ts_us: Sequence[int],
    ) -> list[int]:
        """Message ``i`` of each list is a change of ``instruments[i]`` (not a snapshot) with
        a ``prev_change_id``, no instrument twice. Where that is the instrument's last
        ``change_id``, do what ``check`` does with it (move the chain on: no gap, no
        duplicate); return the positions of the others, which ``check`` must take in order."""
        books = self._books
        rest: list[int] = []
        for i, inst in enumerate(instruments):
            st = books.get(inst)
            if st is not None and st.last_change_id == prev_change_ids[i]:
                st.last_change_id = change_ids[i]
                st.last_ts_us = ts_us[i]
            else:
                rest.append(i)
        return rest

    def advance_many(self, instruments: Sequence[str], change_ids: Sequence[int], ts_us: Sequence[int]) -> None:
        """``advance`` of each message in turn."""
        books = self._books
        for inst, cid, ts in zip(instruments, change_ids, ts_us, strict=True):
            st = books[inst]
            st.last_change_id = cid
            st.last_ts_us = ts

    def resyncing(self, instrument: str) -> bool:
        """A gap of ``instrument`` is open (waiting for a snapshot)."""
        st = self._books.get(instrument)
        return st is not None and bool(st.gaps)

    def open_gaps(self, instrument: str) -> int:
        st = self._books.get(instrument)
        return 0 if st is None else len(st.gaps)

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


def sequenced_trades(events: Sequence[object]) -> Iterator[TradeTick]:
    """The trades of one ``trades.*`` notification whose ``trade_seq`` is checked: every
    trade but the legs expanded from a combo trade of the same notification. Those legs
    are copies (the legs' own instrument channels carry them too) that may arrive
    *before* the instrument's earlier trades (the combo channel's notification first),
    which would look like a gap; the copy on the leg's own stream is checked."""
    combos = None
    for ev in events:
        if type(ev) is not TradeTick:
            continue
        if ev.combo_id is not None:
            if combos is None:
                combos = {e.instrument for e in events if type(e) is TradeTick}
            if ev.combo_id in combos:
                continue
        yield ev


def _unique_start(starts: dict[str, int], instrument: str, start_us: int) -> int:
    """Gaps are keyed by (start, instrument, kind): two gaps of one instrument that would
    start in the same µs (trades share millisecond timestamps) are moved 1 µs apart so
    that the second never overwrites the first."""
    prev = starts.get(instrument)
    if prev is not None and start_us <= prev:
        start_us = prev + 1
    starts[instrument] = start_us
    return start_us
