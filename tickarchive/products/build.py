"""Products over a time range, read window by window from a ``TickSource``.

Each function yields frames in time order, one per window, so a day (or a month) of
snapshots is produced with bounded memory; the caller concatenates, writes or streams
them. Reads:

* chain and surface: the quotes that can matter — for each instant ``t`` the span
  ``[t - max_age, t]`` (on the receive basis a minute more, for quotes received later
  than stamped) — merged into contiguous spans and cut into windows of at most
  ``window_us`` (shorter for fine intervals, so instants × options per window stay
  bounded). Between disjoint spans nothing is carried: a quote older than ``max_age``
  cannot appear in a later snapshot;
* book: from the newest snapshot at or before ``start`` (within ``lookback``) to ``end``;
* gaps: once, over the whole range.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from tickarchive.products import book as bookmod
from tickarchive.products import chain as chainmod
from tickarchive.products import gaps as gapmod
from tickarchive.products import surface as surfmod
from tickarchive.products import tardis
from tickarchive.products.chain import VALUE_COLUMNS, Basis
from tickarchive.products.errors import InvalidProductRequest
from tickarchive.products.source import TickSource
from tickarchive.products.timegrid import US_PER_S, instants, windows

MAX_WINDOW_US = 3600 * US_PER_S
INSTANTS_PER_WINDOW = 600
RECEIVE_SLACK_US = 60 * US_PER_S
"""On the receive basis, quotes stamped up to this long before a span are read too."""


@dataclass(frozen=True, slots=True)
class ChainSpec:
    currency: str
    start_us: int
    end_us: int
    interval_us: int
    max_age_us: int
    basis: Basis = Basis.EXCHANGE
    values: tuple[str, ...] = VALUE_COLUMNS

    def __post_init__(self) -> None:
        if self.start_us >= self.end_us:
            raise InvalidProductRequest("parameters 'start' and 'end': start must be before end")
        if self.max_age_us <= 0:
            raise InvalidProductRequest("parameter 'max_age': must be positive")
        unknown = [v for v in self.values if v not in VALUE_COLUMNS]
        if unknown:
            raise InvalidProductRequest(
                f"parameter 'columns': unknown column(s) {', '.join(unknown[:5])}; chain snapshots carry "
                f"{', '.join(VALUE_COLUMNS)}"
            )

    @property
    def instants(self) -> list[int]:
        return instants(self.start_us, self.end_us, self.interval_us)


@dataclass(frozen=True, slots=True)
class BookSpec:
    instrument: str
    start_us: int
    end_us: int
    interval_us: int
    depth: int = 25
    lookback_us: int = 86_400 * US_PER_S
    only_changed: bool = False

    def __post_init__(self) -> None:
        if self.start_us >= self.end_us:
            raise InvalidProductRequest("parameters 'start' and 'end': start must be before end")
        if not 1 <= self.depth <= 1000:
            raise InvalidProductRequest("parameter 'depth': must be between 1 and 1000")


def read_spans(points: list[int], reach_us: int) -> list[tuple[int, int]]:
    """The union of ``[t - reach, t + 1)`` over ``points`` (ascending), as disjoint spans."""
    out: list[tuple[int, int]] = []
    for t in points:
        lo, hi = t - reach_us, t + 1
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def window_us(interval_us: int) -> int:
    return max(interval_us, min(MAX_WINDOW_US, interval_us * INSTANTS_PER_WINDOW))


def chain_snapshots(source: TickSource, spec: ChainSpec) -> Iterator[pl.DataFrame]:
    """Chain snapshots (``tickarchive.products.chain``) with ``in_gap`` marked."""
    points = spec.instants
    if not points:
        return
    reach = spec.max_age_us + (RECEIVE_SLACK_US if spec.basis is Basis.RECEIVE else 0)
    gaps = gapmod.relevant(source.gaps(points[0] - reach, points[-1] + 1), gapmod.QUOTE_KINDS)
    snap = chainmod.ChainSnapshotter(spec.max_age_us, spec.basis, spec.values)
    columns = ["ts", "recv_ts", "instrument", *spec.values]
    schema = chainmod.snapshot_schema(spec.values)
    # one instant (``at``: interval 1 µs) reads its lookback in the largest windows, not
    # in windows of 600 µs (86 million of them for a day's max_age)
    step = window_us(spec.interval_us) if len(points) > 1 else MAX_WINDOW_US
    for span_lo, span_hi in read_spans(points, reach):
        snap.reset()
        for lo, hi in windows(span_lo, span_hi, step):
            quotes = source.quotes(spec.currency, columns, lo, hi)
            here = points[bisect.bisect_left(points, lo) : bisect.bisect_left(points, hi)]
            frame = snap.window(quotes, here, hi)
            if frame.height:
                marked = gapmod.mark(frame, spec.basis.key, "at", gaps)
                yield frame.with_columns(marked).select(list(schema))


def surfaces(source: TickSource, spec: ChainSpec, level: str) -> Iterator[pl.DataFrame]:
    """Surface ``points`` or ``expiries`` (``tickarchive.products.surface``) per window."""
    if level not in ("points", "expiries"):
        raise InvalidProductRequest(f"parameter 'level': {level[:20]!r} is not one of points, expiries")
    need = ChainSpec(
        spec.currency, spec.start_us, spec.end_us, spec.interval_us, spec.max_age_us, spec.basis,
        surfmod.SNAPSHOT_VALUES,
    )
    for snaps in chain_snapshots(source, need):
        yield surfmod.points(snaps) if level == "points" else surfmod.expiries(snaps)


def book_snapshots(source: TickSource, spec: BookSpec) -> Iterator[pl.DataFrame]:
    """Top-``depth`` book snapshots of one instrument every ``interval`` with ``in_gap``."""
    points = instants(spec.start_us, spec.end_us, spec.interval_us)
    if not points:
        return
    snap_ts = source.last_book_snapshot(spec.instrument, points[0] - spec.lookback_us, points[0])
    first = snap_ts if snap_ts is not None else points[0]
    gaps = gapmod.relevant(source.gaps(first, points[-1] + 1), gapmod.BOOK_KINDS)
    book = bookmod.BookRebuilder(spec.instrument, spec.depth)
    step = window_us(spec.interval_us)
    names = list(bookmod.schema(spec.depth))
    names.insert(names.index("sequence_ok") + 1, "in_gap")
    for lo, hi in windows(first, points[-1] + 1, step):
        rows = source.book_changes(spec.instrument, lo, hi)
        here = points[bisect.bisect_left(points, lo) : bisect.bisect_left(points, hi)]
        frame = book.feed(rows, here, spec.only_changed)
        if frame.height:
            marked = gapmod.mark(frame, "book_ts", "at", gaps)
            yield frame.with_columns(marked).select(names)


def book_schema(depth: int) -> dict[str, pl.DataType]:
    """The schema of ``book_snapshots`` frames."""
    base = bookmod.schema(depth)
    out: dict[str, pl.DataType] = {}
    for name, dtype in base.items():
        out[name] = dtype
        if name == "sequence_ok":
            out["in_gap"] = pl.Boolean()
    return out


def options_chain(source: TickSource, currency: str, start_us: int, end_us: int) -> Iterator[pl.DataFrame]:
    """Tardis ``options_chain`` rows of ``[start, end)`` (by exchange time), an hour at a
    time; each frame is sorted by ``local_timestamp`` (rows near an hour boundary may be
    received after the next hour's first rows: sort the whole day when writing a file)."""
    for lo, hi in windows(start_us, end_us, MAX_WINDOW_US):
        quotes = source.quotes(currency, tardis.QUOTE_COLUMNS, lo, hi)
        if quotes.height:
            yield tardis.options_chain(quotes)
