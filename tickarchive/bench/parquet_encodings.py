"""``tickarchive bench parquet``: the archive's Parquet bytes per row against the lossless
alternatives, on an archive file (docs/archive.md, "What the Parquet bytes are made of").

Each variant rewrites the whole file in memory with one change to the archive's writer
options (``parquet_files.writer_options`` with the encodings ``choose_encodings`` measures)
and prints bytes per row and the writer's rows per second. Two variants leave column
groups out, to show their share of the bytes; one stores ``ts`` as TIMESTAMP(MILLIS) (only
when every value is a whole millisecond: lossless here, but the lake's Iceberg tables and
the other tiers hold microseconds). One stores the double columns whose every value is
exact at the decimals Deribit sends as DECIMAL(18, k) (INT64): lossless, but a change of
type that every reader sees (and pyarrow's cast of a decimal to a double is not correctly
rounded: docs/archive.md).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
DERIBIT_DECIMALS = {
    "bid_price": 4, "bid_amount": 1, "ask_price": 4, "ask_amount": 1, "bid_iv": 2, "ask_iv": 2, "mark_iv": 2,
    "mark_price": 8, "underlying_price": 4, "index_price": 4, "delta": 5, "gamma": 5, "vega": 5, "theta": 5,
    "rho": 5, "open_interest": 4, "last_price": 4, "settlement_price": 8, "min_price": 4, "max_price": 4,
    "interest_rate": 4, "volume_24h": 4, "current_funding": 10, "funding_8h": 10, "estimated_delivery_price": 4,
    "high_24h": 4, "low_24h": 4, "price_change_24h": 4, "volume_usd_24h": 2, "volume_notional_24h": 4,
    "interest_value": 10, "delivery_price": 4, "implied_bid": 4, "implied_ask": 4,
    "price": 4, "amount": 1, "iv": 2, "contracts": 1,
}
"""Decimals Deribit sends per double column of ``quotes`` (the warm tier's V009 uses the
same), ``book_changes`` and ``trades`` (``mark_price`` and ``index_price`` as in quotes)."""


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
    decimals, exact = as_decimals(data)
    if exact:
        yield measure(f"the doubles as DECIMAL(18, k) at Deribit's decimals, stored as INT64 ({len(exact)} columns "
                      "where every value is exact; readers see decimals)", decimals, store_decimal_as_integer=True,
                      **_without(base, exact))
    for group, what in ((PRICE_AND_GREEKS, "mark_price and the greeks"), (TIMES, "ts and recv_ts")):
        present = tuple(c for c in group if c in data.column_names)
        if present:
            yield measure(f"without {what} (their share)", data.drop_columns(list(present)),
                          **_without(base, present))


def as_decimals(data: pa.Table) -> tuple[pa.Table, tuple[str, ...]]:
    """``data`` with each double column of ``DERIBIT_DECIMALS`` whose every value ``x`` is
    ``m / 10^k`` bit for bit (``m`` an integer below 2^53; no -0.0) as DECIMAL(18, k) holding ``m``,
    and the names of those columns. The others are left as they are."""
    done = []
    for name, k in DERIBIT_DECIMALS.items():
        if name not in data.column_names or not pa.types.is_floating(data.schema.field(name).type):
            continue
        col = data.column(name).combine_chunks()
        valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), np.bool_)
        x = col.to_numpy(zero_copy_only=False)[valid].astype(np.float64)
        m = np.round(x * 10.0**k)
        if not (np.all(np.abs(m) < 2.0**53) and np.array_equal((m / 10.0**k).view(np.int64), x.view(np.int64))):
            continue
        if np.any((x == 0) & np.signbit(x)):
            continue  # -0.0: a decimal has no negative zero
        ints = np.zeros(len(col), np.int64)
        ints[valid] = m.astype(np.int64)
        unscaled = pc.cast(pa.array(ints, mask=~valid), pa.decimal128(19, 0))  # |m| < 2^53: 16 digits
        dec = pa.Array.from_buffers(pa.decimal128(18, k), len(col), unscaled.buffers(), null_count=unscaled.null_count)
        at = data.schema.get_field_index(name)
        data = data.set_column(at, pa.field(name, dec.type, data.schema.field(name).nullable), dec)
        done.append(name)
    return data, tuple(done)


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
