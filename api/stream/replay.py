"""Replaying stored history over a stream, in exchange-time order across tables and tiers.

``Replay.run(emit)`` walks [start, end) in windows. Each window is read per table with the
REST tier router (``api.query.rows``: hot, warm and cold segments, de-duplicated on the
dedup keys), at most ``stream.replay_page_rows`` rows per table; when a table's page is
full the window is cut at that page's last ``ts`` (every row before it is complete for
every table) and the next window starts there. The rows of a window are merged across
tables by ``ts`` (ties: the order of the requested channels) and emitted as runs of one
table, each with the position ``r.<ts_us>`` meaning "every row before ``ts_us``
delivered" on the last message of the window.

Pace: ``speed = 0`` emits as fast as ``emit`` returns (the client's reading paces it: the
WebSocket send is awaited); ``speed = N`` sends rows when ``(ts - start) / N`` seconds have
passed since the replay began.

Open-ended (``end`` None) is the delayed live stream: the replay follows ``now - delay``,
one ``TAIL_STEP_US`` at a time, so a delayed plan sees every stored row exactly once,
``delay`` after it happened.

The window adapts to the data: it doubles while windows are sparse and halves when a page
fills, between ``MIN_WINDOW_US`` and ``MAX_WINDOW_US``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import polars as pl

from tickarchive.api import query
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.stores import Stores
from tickarchive.api.timefmt import US_PER_S
from tickarchive.tables import Table

MIN_WINDOW_US = 1_000
MAX_WINDOW_US = 86_400 * US_PER_S
FIRST_WINDOW_US = 60 * US_PER_S
TAIL_STEP_US = 1 * US_PER_S
MAX_MESSAGE_ROWS = 20_000
"""Rows per message at most (a run longer than this is split)."""
PACE_SLICE_S = 0.1
"""With ``speed > 0``, messages cover at most this much wall time of the replay."""

Emit = Callable[[str, pl.DataFrame, str | None], Awaitable[None]]
"""``emit(channel, rows, position)``: send one message (awaited: back-pressure)."""


def position_of(ts_us: int) -> str:
    return f"r.{ts_us}"


def parse_position(text: str) -> int | None:
    if not text.startswith("r."):
        return None
    rest = text[2:]
    return int(rest) if rest.lstrip("-").isdigit() else None


@dataclass(frozen=True, slots=True)
class Window:
    frames: list[pl.DataFrame]
    """Per table (in channel order): the rows with lo <= ts < cut."""
    cut_us: int
    full: bool
    """A page filled up (the window was cut short)."""


def read_window(
    stores: Stores, tables: Sequence[Table], match: InstrumentMatch | None, lo_us: int, hi_us: int, page_rows: int,
    max_rows: int,
) -> Window:
    """The rows of [lo, hi) of every table, cut where a page filled (blocking)."""
    rows = page_rows
    while True:
        pages = [query.rows(stores, t, t.column_names, lo_us, hi_us, match, {}, rows, None) for t in tables]
        cut = hi_us
        full = False
        for page in pages:
            if page.cursor is not None:
                full = True
                cut = min(cut, int(page.frame.get_column("ts")[-1]))
        if cut > lo_us or rows >= max_rows:
            break
        rows = min(max_rows, rows * 4)  # one microsecond holds more rows than a page: read more of it
    if cut <= lo_us:  # more than max_rows rows in one microsecond: deliver the page, move on by 1 µs
        cut = lo_us + 1
    frames = [p.frame.filter(pl.col("ts") < cut) if full else p.frame for p in pages]
    return Window(frames, cut, full)


def runs(frames: Sequence[pl.DataFrame], bucket_us: int | None, origin_us: int) -> list[tuple[int, int, int]]:
    """(table index, first row, end row) of each run of one table in exchange-time order
    (ties: table order); with ``bucket_us`` a run also ends where ``(ts - origin) //
    bucket_us`` changes; no run is longer than ``MAX_MESSAGE_ROWS``."""
    parts = [
        pl.DataFrame({"ts": f.get_column("ts"), "t": pl.repeat(i, f.height, dtype=pl.Int32, eager=True)})
        for i, f in enumerate(frames)
        if f.height
    ]
    if not parts:
        return []
    order = pl.concat(parts).sort("ts", "t", maintain_order=True)  # stable: rows of a table keep their order
    change = pl.col("t") != pl.col("t").shift()
    if bucket_us:
        b = (pl.col("ts") - origin_us) // bucket_us
        change = change | (b != b.shift())
    grouped = (
        order.with_columns(change.fill_null(True).cum_sum().alias("run"))
        .group_by("run", maintain_order=True)
        .agg(pl.col("t").first(), pl.len().alias("n"))
    )
    out: list[tuple[int, int, int]] = []
    next_row = [0] * len(frames)
    for t, n in zip(grouped.get_column("t").to_list(), grouped.get_column("n").to_list(), strict=True):
        start = next_row[t]
        for a in range(start, start + n, MAX_MESSAGE_ROWS):
            out.append((t, a, min(a + MAX_MESSAGE_ROWS, start + n)))
        next_row[t] = start + n
    return out


class Replay:
    def __init__(
        self,
        stores: Stores,
        tables: Sequence[Table],
        match: InstrumentMatch | None,
        start_us: int,
        end_us: int | None,
        *,
        speed: float = 0.0,
        delay_us: int = 0,
        page_rows: int = 100_000,
        max_rows: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stores = stores
        self.tables = list(tables)
        self.match = match
        self.start_us = start_us
        self.end_us = end_us
        self.speed = speed
        self.delay_us = delay_us
        self.page_rows = page_rows
        self.max_rows = max_rows
        self._clock = clock
        self.rows_sent = 0
        self.position = position_of(start_us)

    def _now_us(self) -> int:
        return int(self._clock() * US_PER_S)

    async def run(self, emit: Emit) -> None:
        lo = self.start_us
        window = FIRST_WINDOW_US
        wall0 = self._clock()
        bucket = int(PACE_SLICE_S * self.speed * US_PER_S) if self.speed > 0 else None
        while True:
            horizon = self.end_us if self.end_us is not None else self._now_us() - self.delay_us
            if lo >= horizon:
                if self.end_us is not None:
                    return
                await asyncio.sleep((lo + TAIL_STEP_US - horizon) / US_PER_S)
                continue
            hi = min(lo + window, horizon)
            w = await asyncio.to_thread(
                read_window, self.stores, self.tables, self.match, lo, hi, self.page_rows, self.max_rows
            )
            pieces = runs(w.frames, bucket, self.start_us)
            for k, (t, a, b) in enumerate(pieces):
                chunk = w.frames[t].slice(a, b - a)
                if self.speed > 0:
                    due = wall0 + (int(chunk.get_column("ts")[0]) - self.start_us) / US_PER_S / self.speed
                    wait = due - self._clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                last = k == len(pieces) - 1
                await emit(self.tables[t].name, chunk, position_of(w.cut_us) if last else None)
                self.rows_sent += chunk.height
            self.position = position_of(w.cut_us)
            total = sum(f.height for f in w.frames)
            if w.full:
                window = max(MIN_WINDOW_US, (w.cut_us - lo) // 2 or MIN_WINDOW_US)
            elif total < self.page_rows // 4 and hi - lo >= window:
                window = min(MAX_WINDOW_US, window * 2)
            lo = w.cut_us
