"""Replaying stored history over a stream, in exchange-time order across tables and tiers.

``Replay.run(emit, encode)`` walks [start, end) in windows. Each window is read per table
(``read_rows``: the REST tier router's rows, hot, warm and cold segments in order,
de-duplicated on the dedup keys, ordered by ``ts`` then the dedup keys; a cold segment is
read straight from the archive's Parquet files with one eager polars scan), at most
``stream.replay_page_rows`` rows per table; when a table's page is full the window is cut
at that page's last ``ts`` (every row before it is complete for every table) and the next
window starts there. Hot and warm tables of a window are read at once (one thread each).

A window's rows are merged across tables by ``ts`` (ties: the order of the requested
channels) into chunks (``chunks``): one message each, of at most ``MAX_MESSAGE_ROWS``
rows, holding every table's rows of that stretch and the merged order (one byte per row,
the ``merged`` message of ``api.stream.messages``). The merge is one vectorized sort of
the ``ts`` columns; the rows themselves are only sliced. Each chunk carries the position
``r.<ts_us>`` ("every row before ``ts_us`` delivered") when it ends between two
different ``ts``, and the window's last chunk its cut. A window is read, chunked and
encoded (``encode``) in a worker thread while the previous one is sent: the event loop
only sends finished bytes.

Pace: ``speed = 0`` emits as fast as ``emit`` returns (the client's reading paces it: the
WebSocket send is awaited); ``speed = N`` sends a chunk when ``(ts - start) / N`` seconds
have passed since the replay began (chunks then also end at every ``PACE_SLICE_S`` of
replayed wall time).

Open-ended (``end`` None) is the delayed live stream: the replay follows ``now - delay``,
one ``TAIL_STEP_US`` at a time, so a delayed plan sees every stored row exactly once,
``delay`` after it happened.

The window adapts to the data: it starts at one second and aims at a page of rows at the
rate just seen (at most 4x longer each time), halves when a page fills, between
``MIN_WINDOW_US`` and ``MAX_WINDOW_US``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl

from tickarchive.api import frames, query
from tickarchive.api.cold import ColdReader
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.stores import Stores
from tickarchive.api.tiers import Segment, Tier
from tickarchive.api.timefmt import US_PER_S
from tickarchive.tables import ColumnType, Table

MIN_WINDOW_US = 1_000
MAX_WINDOW_US = 86_400 * US_PER_S
FIRST_WINDOW_US = 1 * US_PER_S
TAIL_STEP_US = 1 * US_PER_S
MAX_MESSAGE_ROWS = 20_000
"""Rows per message at most (~1.4 MB of LZ4 Arrow for the three market tables)."""
PACE_SLICE_S = 0.1
"""With ``speed > 0``, messages cover at most this much wall time of the replay."""

M = TypeVar("M")
"""What ``Replay.run``'s ``encode`` makes of a chunk (the message to send)."""


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


def next_window(window_us: int, got_us: int, rows: int, full: bool, page_rows: int) -> int:
    """The next window's length: aimed at a page of rows over all tables at the rate
    just seen, at most 4x longer than the last, halved when a page filled."""
    if full:
        return max(MIN_WINDOW_US, got_us // 2)
    if rows == 0:
        return min(MAX_WINDOW_US, window_us * 4)
    aim = got_us * page_rows // rows
    return max(MIN_WINDOW_US, min(MAX_WINDOW_US, window_us * 4, aim))


@dataclass(frozen=True, slots=True)
class Page:
    frame: pl.DataFrame
    full: bool
    """More rows than ``limit`` in the range: ``frame`` holds the first ``limit``."""


def read_rows(
    stores: Stores, table: Table, segments: Sequence[Segment], *, match: InstrumentMatch | None, limit: int
) -> Page:
    """The first ``limit`` rows of ``table`` in the tier ``segments`` (``stores.segments``
    of [lo, hi)) in the REST order (``ts``, then the
    dedup keys), de-duplicated across tiers: ``api.query.rows`` without a cursor, except
    that a cold segment is read here in one eager scan of the files that can hold it
    (the archive's files are sorted by instrument, so every window needs their ``ts``
    column anyway; an eager sort of the window is twice as fast as the lazy top-k)."""
    keys = list(frames.order_keys(table, match.column if match and match.exact else None))
    schema = frames.schema(table, table.column_names)
    parts: list[pl.DataFrame] = []
    have = 0
    for seg in segments:
        if seg.tier is Tier.COLD:
            part = _cold_rows(stores.cold, table, match, seg.lo_us, seg.hi_us, keys, limit + 1 - have, schema)
        else:
            part = stores.reader(seg.tier).rows(table, table.column_names, seg.lo_us, seg.hi_us, match, {},
                                                limit + 1 - have)
        if part.height:
            parts.append(part)
            have += part.height
        if have > limit:
            break
    frame = query.merge(parts, table, schema)
    return Page(frame.head(limit), frame.height > limit)


def _cold_rows(
    cold: ColdReader, table: Table, match: InstrumentMatch | None, lo_us: int, hi_us: int, keys: list[str], limit: int,
    schema: dict[str, pl.DataType],
) -> pl.DataFrame:
    with cold.files(table.name, lo_us, hi_us, match) as paths:
        if not paths:
            return pl.DataFrame(schema=schema)
        ts = pl.col("ts").cast(pl.Int64)
        cond = (ts >= lo_us) & (ts < hi_us)
        if match is not None:
            col = pl.col(match.column)
            cond = cond & (col == match.exact if match.exact is not None else col.str.contains(match.regex or ""))
        times = [c.name for c in table.columns if c.type is ColumnType.TIMESTAMP]
        try:
            frame = (
                pl.scan_parquet([str(p) for p in paths])
                .filter(cond)
                .select(table.column_names)
                .with_columns([pl.col(c).cast(pl.Int64) for c in times])
                .collect()
            )
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable", f"archive: reading Parquet: {exc!r}") from exc
    return frame.sort(keys).head(limit).cast(schema)  # type: ignore[arg-type]


def read_window(
    stores: Stores, tables: Sequence[Table], match: InstrumentMatch | None, lo_us: int, hi_us: int, page_rows: int,
    max_rows: int, pool: Executor | None = None,
) -> Window:
    """The rows of [lo, hi) of every table, cut where a page filled (blocking); with
    ``pool`` the tables are read at once from the hot and warm tiers (waiting on servers;
    a cold read is polars' own parallel work: one table after the other is as fast)."""
    rows = page_rows
    segments = [stores.segments(t, lo_us, hi_us) for t in tables]
    serial = pool is None or len(tables) == 1 or all(seg.tier is Tier.COLD for seg in segments[0])
    while True:
        read = functools.partial(read_rows, stores, match=match, limit=rows)
        if serial or pool is None:
            pages = [read(t, segs) for t, segs in zip(tables, segments, strict=True)]
        else:
            pages = list(pool.map(read, tables, segments))
        cut = hi_us
        full = False
        for page in pages:
            if page.full:
                full = True
                cut = min(cut, int(page.frame.get_column("ts")[-1]))
        if cut > lo_us or rows >= max_rows:
            break
        rows = min(max_rows, rows * 4)  # one microsecond holds more rows than a page: read more of it
    if cut <= lo_us:  # more than max_rows rows in one microsecond: deliver the page, move on by 1 µs
        cut = lo_us + 1
    out = [p.frame.filter(pl.col("ts") < cut) if full else p.frame for p in pages]
    return Window(out, cut, full)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message: a stretch of the merged stream in exchange-time order."""

    parts: list[tuple[str, pl.DataFrame]]
    """(channel, rows) of every channel with rows here, in channel order; each in ts order."""
    order: bytes
    """Per row of the merged stream, the index in ``parts`` of the part it comes from."""
    position: str | None
    """``r.<ts_us>`` when every row before ``ts_us`` has been sent with this chunk, else None."""
    first_ts_us: int

    @property
    def rows(self) -> int:
        return len(self.order)


def chunks(
    names: Sequence[str], w: Window, bucket_us: int | None, origin_us: int, max_rows: int = MAX_MESSAGE_ROWS
) -> list[Chunk]:
    """The window's rows as messages of at most ``max_rows`` rows, merged across tables in
    exchange-time order (ties: table order; a table's rows keep their order); with
    ``bucket_us`` a message also ends where ``(ts - origin) // bucket_us`` changes. The last
    chunk carries the window's cut as its position; an earlier one carries the ``ts`` of
    the next row when that is later than its own last row (every row before it sent)."""
    present = [i for i, f in enumerate(w.frames) if f.height]
    if not present:
        return []
    merged = pl.concat(
        [
            pl.DataFrame({"ts": w.frames[i].get_column("ts"), "p": pl.repeat(k, w.frames[i].height, dtype=pl.UInt8,
                                                                             eager=True)})
            for k, i in enumerate(present)
        ],
        rechunk=True,
    ).sort("ts", "p", maintain_order=True)
    ts = merged.get_column("ts").to_numpy()
    part = merged.get_column("p").to_numpy()
    total = len(ts)
    cuts = [0]
    if bucket_us:
        bucket = (ts - origin_us) // bucket_us
        cuts.extend(int(x) for x in np.flatnonzero(bucket[1:] != bucket[:-1]) + 1)
    cuts.append(total)
    bounds: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(cuts):
        bounds.extend((x, min(x + max_rows, b)) for x in range(a, b, max_rows))
    out: list[Chunk] = []
    taken = [0] * len(present)
    for a, b in bounds:
        counts = np.bincount(part[a:b], minlength=len(present))
        parts: list[tuple[str, pl.DataFrame]] = []
        remap = np.zeros(len(present), dtype=np.uint8)
        for k, i in enumerate(present):
            n = int(counts[k])
            if n:
                remap[k] = len(parts)
                parts.append((names[i], w.frames[i].slice(taken[k], n)))
                taken[k] += n
        if b == total:
            position: str | None = position_of(w.cut_us)
        else:
            position = position_of(int(ts[b])) if ts[b] > ts[b - 1] else None
        order = part[a:b] if len(parts) == len(present) else remap[part[a:b]]
        out.append(Chunk(parts, order.tobytes(), position, int(ts[a])))
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
        message_rows: int = MAX_MESSAGE_ROWS,
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
        self.message_rows = message_rows
        self._clock = clock
        self.rows_sent = 0
        self.position = position_of(start_us)

    def _now_us(self) -> int:
        return int(self._clock() * US_PER_S)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tables]

    async def run(self, emit: Callable[[Chunk, M], Awaitable[None]], encode: Callable[[Chunk], M]) -> None:
        """Send every row of the range: ``emit(chunk, encode(chunk))`` per message, awaited
        (back-pressure). A window is read, cut into chunks and encoded in a worker thread
        while the previous one is sent (one window ahead at most)."""
        pool = ThreadPoolExecutor(len(self.tables), thread_name_prefix="replay")
        try:
            await self._run(emit, encode, pool)
        finally:  # never wait here (the event loop): a read still running ends in its thread
            pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, emit: Callable[[Chunk, M], Awaitable[None]], encode: Callable[[Chunk], M],
                   pool: Executor) -> None:
        wall0 = self._clock()
        lo, window = self.start_us, FIRST_WINDOW_US
        pending = asyncio.create_task(self._window(lo, window, encode, pool))
        try:
            while True:
                ready = await pending
                if ready is None:
                    return
                w, messages = ready
                window = next_window(window, w.cut_us - lo, sum(f.height for f in w.frames), w.full, self.page_rows)
                lo = w.cut_us
                pending = asyncio.create_task(self._window(lo, window, encode, pool))
                for chunk, m in messages:
                    if self.speed > 0:
                        wait = wall0 + (chunk.first_ts_us - self.start_us) / US_PER_S / self.speed - self._clock()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    await emit(chunk, m)
                    self.rows_sent += chunk.rows
                self.position = position_of(w.cut_us)
        finally:
            pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # read ahead for a stream that is ending: nothing to raise it to

    async def _window(
        self, lo: int, window: int, encode: Callable[[Chunk], M], pool: Executor
    ) -> tuple[Window, list[tuple[Chunk, M]]] | None:
        """The window starting at ``lo``, as encoded chunks (None: the range is done); an
        open-ended replay waits until ``lo`` is older than its delay."""
        while True:
            horizon = self.end_us if self.end_us is not None else self._now_us() - self.delay_us
            if lo < horizon:
                break
            if self.end_us is not None:
                return None
            await asyncio.sleep((lo + TAIL_STEP_US - horizon) / US_PER_S)
        return await asyncio.to_thread(self._prepare, lo, min(lo + window, horizon), encode, pool)

    def _prepare(
        self, lo: int, hi: int, encode: Callable[[Chunk], M], pool: Executor
    ) -> tuple[Window, list[tuple[Chunk, M]]]:
        w = read_window(self.stores, self.tables, self.match, lo, hi, self.page_rows, self.max_rows, pool)
        bucket = int(PACE_SLICE_S * self.speed * US_PER_S) if self.speed > 0 else None
        return w, [(c, encode(c)) for c in chunks(self.names, w, bucket, self.start_us, self.message_rows)]
