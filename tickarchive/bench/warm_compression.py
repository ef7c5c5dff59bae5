"""``tickarchive bench warm-compression``: where TimescaleDB's compressed bytes of quotes go.

Loads quote rows (Parquet files, e.g. the archive files a ``tickarchive bench cost --keep``
run exported from the simulator) into a private PGlite TimescaleDB test server, twice:

* ``decimals``: the warm store's form (store/sql/timescaledb/V009): ``WarmStore.load`` into
  ``quotes_data``, each double an exact scaled integer or, when none gives it back, the double;
* ``doubles``: the same rows through the same loader into a hypertable of plain double
  columns with the settings quotes had before V009 (segmentby instrument, orderby ts);

compresses each day's chunk as the rollover does and prints per form the load speed (the
rollover's loader, ``unnest`` INSERTs of 50,000 rows on PGlite: not production's speed, but
the two forms side by side), the bytes per row before
(heap + TOAST + indexes of the uncompressed chunks) and after (the compressed chunks, the same
three counted), the ratio, and per column the bytes per row of its compressed values
(``pg_column_size`` of the compressed chunks' columns); the rest of "after" is the compressed
rows' headers, TOAST chunk and page overhead and the indexes.

The first ``instruments`` instruments by name are kept (every row of each), as the cost
benchmark does: compression works per instrument segment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from tickarchive import rows
from tickarchive.store.dialect import Dialect
from tickarchive.store.stack import ephemeral
from tickarchive.store.warm import WarmStore, day_bounds
from tickarchive.store.warm_load import load_unnest
from tickarchive.tables import QUOTES, Table

Echo = Callable[[str], None]
DOUBLES_TABLE = "quotes_doubles"


@dataclass(slots=True)
class FormSize:
    rows: int
    before_bytes: int
    after_bytes: int
    batches: int
    load_s: float = 0.0
    columns: dict[str, int] = field(default_factory=dict)
    """Compressed bytes of each column of the compressed chunks (segment column and metadata included)."""

    @property
    def ratio(self) -> float:
        return self.before_bytes / self.after_bytes if self.after_bytes else 0.0

    def per_row(self, n: int) -> float:
        return n / self.rows if self.rows else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "batches": self.batches,
            "load_rows_per_s": round(self.rows / self.load_s) if self.load_s else 0,
            "before_bytes_per_row": round(self.per_row(self.before_bytes), 2),
            "after_bytes_per_row": round(self.per_row(self.after_bytes), 2),
            "ratio": round(self.ratio, 2),
            "column_bytes_per_row": {k: round(self.per_row(v), 3) for k, v in self.columns.items()},
        }


def read_quotes(paths: list[Path], instruments: int) -> pa.Table:
    """Every row of the first ``instruments`` instruments (by name) of the quote files under
    ``paths`` (files, or directories searched for ``*.parquet``), in the quotes schema."""
    files = sorted({str(f) for p in paths for f in ([p] if p.is_file() else p.rglob("*.parquet"))})
    if not files:
        raise FileNotFoundError(f"no Parquet files under {', '.join(map(str, paths))}")
    schema = rows.arrow_schema(QUOTES)
    data = pa.concat_tables(pq.read_table(f, columns=list(schema.names)).cast(schema) for f in files)
    names = sorted(pc.unique(data.column("instrument")).to_pylist())[:instruments]
    return data.filter(pc.is_in(data.column("instrument"), value_set=pa.array(names, pa.string())))


def _days(data: pa.Table) -> list[dt.date]:
    return sorted(set(pc.cast(data.column("ts"), pa.date32()).to_pylist()))


def _compress(conn: psycopg.Connection[Any], hypertable: str, day: dt.date) -> None:
    lo, hi = day_bounds(day)
    conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s::regclass, "
        "older_than => %s::timestamptz, newer_than => %s::timestamptz) c",
        (hypertable, hi, lo),
    )


def _measure(conn: psycopg.Connection[Any], hypertable: str, n_rows: int) -> FormSize:
    row = conn.execute(
        "SELECT coalesce(sum(before_compression_total_bytes), 0), coalesce(sum(after_compression_total_bytes), 0) "
        "FROM hypertable_compression_stats(%s::regclass)",
        (hypertable,),
    ).fetchone()
    assert row is not None
    size = FormSize(n_rows, int(row[0]), int(row[1]), 0)
    chunks = conn.execute(
        "SELECT format('%%I.%%I', cc.schema_name, cc.table_name) FROM _timescaledb_catalog.chunk c "
        "JOIN _timescaledb_catalog.chunk cc ON cc.id = c.compressed_chunk_id "
        "JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id "
        "WHERE h.table_name = %s AND NOT c.dropped",
        (hypertable,),
    ).fetchall()
    for (chunk,) in chunks:
        cols = [
            str(r[0])
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                (chunk,),
            ).fetchall()
        ]
        q = sql.SQL("SELECT count(*), {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("coalesce(sum(pg_column_size({})), 0)").format(sql.Identifier(c)) for c in cols
            ),
            sql.SQL(chunk),
        )
        got = conn.execute(q).fetchone()
        assert got is not None
        size.batches += int(got[0])
        for c, b in zip(cols, got[1:], strict=True):
            size.columns[c] = size.columns.get(c, 0) + int(b)
    return size


def _load(ws: WarmStore, table: Table, data: pa.Table, days: list[dt.date], form: bool) -> float:
    """Load ``data`` day by day as the rollover does (``form``: through the table's stored
    form, else plainly into ``table.name``), compressing each day after; the load seconds."""
    spent = 0.0
    for day in days:
        part = data.filter(pc.equal(pc.cast(data.column("ts"), pa.date32()), pa.scalar(day, pa.date32())))
        t0 = time.perf_counter()
        for batch in part.to_batches(max_chunksize=50_000):
            if form:
                ws.load(table, batch, day, fresh=True)
            else:
                load_unnest(ws.conn, table, batch)
        spent += time.perf_counter() - t0
        _compress(ws.conn, ws.storage(table) if form else table.name, day)
    return spent


def run(data: pa.Table, echo: Echo = print) -> dict[str, FormSize]:
    """Load ``data`` (quote rows) in both forms into a private PGlite TimescaleDB, compress
    per day, measure."""
    days = _days(data)
    doubles = dataclasses.replace(QUOTES, name=DOUBLES_TABLE)
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-warm-") as tmp, ephemeral.timescaledb(
        Path(tmp) / "pglite"
    ) as w, WarmStore(w.server.dsn, Dialect.TIMESCALEDB, pglite=True) as ws:
        conn = ws.conn
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in QUOTES.column_names)
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT {} FROM quotes WITH NO DATA").format(sql.Identifier(DOUBLES_TABLE), cols)
        )
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (instrument, ts)").format(sql.Identifier(DOUBLES_TABLE)))
        conn.execute("SELECT create_hypertable(%s, by_range('ts', INTERVAL '1 day'))", (DOUBLES_TABLE,))
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument', "
                "timescaledb.compress_orderby = 'ts')"
            ).format(sql.Identifier(DOUBLES_TABLE))
        )
        stored = ws.storage(QUOTES)
        spent = _load(ws, QUOTES, data, days, form=True)
        echo(f"warm-compression: {data.num_rows:,} rows loaded into {stored} in {spent:.1f} s, compressed")
        spent_doubles = _load(ws, doubles, data, days, form=False)
        echo(f"warm-compression: the same rows into {DOUBLES_TABLE} in {spent_doubles:.1f} s, compressed")
        result = {
            "decimals": _measure(conn, stored, data.num_rows),
            "doubles": _measure(conn, DOUBLES_TABLE, data.num_rows),
        }
        result["decimals"].load_s = spent
        result["doubles"].load_s = spent_doubles
        return result


def summary(result: dict[str, FormSize], top: int = 16) -> str:
    lines = []
    for name, s in result.items():
        lines.append(
            f"{name:9s} {s.rows:,} rows in {s.batches:,} compressed batches ({s.rows / max(s.batches, 1):,.0f} rows "
            f"each): {s.per_row(s.before_bytes):.1f} -> {s.per_row(s.after_bytes):.1f} B/row, {s.ratio:.2f}x; "
            f"loaded at {s.rows / s.load_s if s.load_s else 0:,.0f} rows/s"
        )
        values = sum(s.columns.values())
        ranked = sorted(s.columns.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k} {s.per_row(v):.2f}" for k, v in ranked[:top] if v)
        lines.append(f"          compressed values {s.per_row(values):.1f} B/row: {shown}")
        lines.append(
            f"          rest (row headers, TOAST and page overhead, indexes): "
            f"{s.per_row(s.after_bytes - values):.1f} B/row"
        )
    return "\n".join(lines)


def write_json(result: dict[str, FormSize], path: Path) -> None:
    path.write_text(json.dumps({k: v.as_json() for k, v in result.items()}, indent=2) + "\n")
