"""``tickarchive bench parquet``: the archive's Parquet bytes per row against the lossless
alternatives, on an archive file (docs/archive.md, "What the Parquet bytes are made of").

Each variant rewrites the whole file in memory with one change to the archive's writer
options (``parquet_files.writer_options`` with the encodings ``choose_encodings`` measures)
and prints bytes per row and the writer's rows per second. Two variants leave column
groups out, to show their share of the bytes; one stores ``ts`` as TIMESTAMP(MILLIS) (only
when every value is a whole millisecond: lossless here, but the lake's Iceberg tables and
the other tiers hold microseconds).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickarchive.archive import parquet_files as pf
from tickarchive.tables import Table

ZSTD_LEVELS = (12, 15, 19, 22)
ROW_GROUP_ROWS = 500_000
"""The archive's row group (``archive.row_group_rows``' default)."""
PRICE_AND_GREEKS = ("mark_price", "delta", "gamma", "vega", "theta", "rho")
TIMES = ("ts", "recv_ts")


@dataclass(frozen=True, slots=True)
class Variant:
    label: str
    bytes_per_row: float
    rows_per_s: float


def _write(data: pa.Table, options: dict[str, Any]) -> tuple[int, float]:
    buf = io.BytesIO()
    t0 = time.perf_counter()
    pq.write_table(data, buf, row_group_size=options.pop("row_group_size", ROW_GROUP_ROWS), **options)
    return buf.tell(), time.perf_counter() - t0


def _without(options: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    out = dict(options)
    out["use_dictionary"] = [c for c in options["use_dictionary"] if c not in columns]
    out["column_encoding"] = {k: v for k, v in options["column_encoding"].items() if k not in columns}
    return out


def variants(table: Table, data: pa.Table, zstd_level: int = 9) -> Iterator[Variant]:
    """The archive's own options first, then each alternative (``data`` is sorted as the
    archive sorts it before anything is measured)."""
    data = pf.sort_table(table, data)
    n = max(data.num_rows, 1)
    base = pf.writer_options(table, zstd_level, pf.choose_encodings(table, data.slice(0, pf.ENCODING_SAMPLE_ROWS),
                                                                      zstd_level))

    def measure(label: str, tab: pa.Table = data, **change: Any) -> Variant:
        options = dict(base)
        options.update(change)
        size, secs = _write(tab, options)
        return Variant(label, size / n, tab.num_rows / secs if secs else 0.0)

    yield measure(f"the archive's options (zstd {zstd_level}, encodings measured per column, "
                  f"{ROW_GROUP_ROWS:,}-row groups)")
    for level in ZSTD_LEVELS:
        yield measure(f"zstd {level}", compression_level=level)
    floats = [f.name for f in data.schema if pa.types.is_floating(f.type)]
    split = _without(base, tuple(floats))
    split["column_encoding"] = {**split["column_encoding"], **dict.fromkeys(floats, "BYTE_STREAM_SPLIT")}
    yield measure("BYTE_STREAM_SPLIT for every float column", **split)
    yield measure("a dictionary for every column", use_dictionary=True, column_encoding=None)
    yield measure("one row group per file", row_group_size=max(data.num_rows, 1))
    yield measure("8 MiB data pages", data_page_size=8 << 20)
    ts = pc.cast(data.column("ts"), pa.int64())
    if data.num_rows and pc.all(pc.equal(pc.multiply(pc.divide(ts, 1000), 1000), ts)).as_py():
        as_ms = data.set_column(data.schema.get_field_index("ts"), "ts", pc.cast(data.column("ts"), pa.timestamp("ms")))
        yield measure("ts as TIMESTAMP(MILLIS) (every value a whole ms)", as_ms)
    for group, what in ((PRICE_AND_GREEKS, "mark_price and the greeks"), (TIMES, "ts and recv_ts")):
        present = tuple(c for c in group if c in data.column_names)
        if present:
            yield measure(f"without {what} (their share)", data.drop_columns(list(present)),
                          **_without(base, present))


def table_of(path: Path) -> str | None:
    """The table an archive file holds (its key-value metadata), or None."""
    meta = pq.read_schema(path).metadata or {}
    name = meta.get(pf.META_TABLE)
    return name.decode() if name else None


# ---------------------------------------------------------------------------- trades


def simulated_trades(count: int, trades_per_day: int, seed: int = 1) -> pa.Table:
    """``count`` trades of the simulator's market (1,000 instruments), spaced as
    ``trades_per_day`` are in real time (the model's clock runs at the same pace), each
    sent as a ``trades.{kind}.{currency}.100ms`` notification and parsed by the Deribit
    parser as the collector parses it: the ``trades`` rows of ``count / trades_per_day`` days."""
    import json

    from tickarchive import rows
    from tickarchive.domain import TradeTick
    from tickarchive.loadtest.sim.config import SimConfig
    from tickarchive.loadtest.sim.events import TradesEvent
    from tickarchive.loadtest.sim.market import MarketModel
    from tickarchive.tables import TRADES
    from tickarchive.venues.deribit.normalize import parse_frame

    tick_ms = 10
    gap_ms = max(1, 86_400_000 // trades_per_day)  # one trade per step, a step every gap_ms
    start_ms = 1_767_225_600_000
    cfg = SimConfig(seed=seed, start_ms=start_ms, instruments=1000, rate_per_s=0, tick_ms=tick_ms,
                    trades_per_s=1000.0 / tick_ms, time_scale=gap_ms / tick_ms)
    model = MarketModel(cfg, start_ms, native=True)
    events: list[TradeTick] = []
    now_ms = start_ms
    while len(events) < count:
        now_ms += gap_ms
        for ev in model.step_native(now_ms)[0]:
            if not isinstance(ev, TradesEvent):
                continue
            for trade, (currency, kind) in zip(ev.trades, ev.routes, strict=True):
                note = {"jsonrpc": "2.0", "method": "subscription",
                        "params": {"channel": f"trades.{kind}.{currency}.100ms", "data": [trade]}}
                out = parse_frame(json.dumps(note).encode(), trade["timestamp"] * 1000 + 700)
                events.extend(e for e in getattr(out, "events", ()) if isinstance(e, TradeTick))
    return rows.events_to_arrow(TRADES, events[:count])
