"""The send log: exactly what the simulator sent (and did not send), per connection.

Every market-data notification that was due to a subscribed connection is recorded once
per connection with a ``status``:

* ``sent``      handed to the socket (written to the transport; a frame written just
                before a ``drop`` may still die in kernel buffers);
* ``silenced``  withheld by a ``silence`` or ``maintenance`` fault;
* ``skipped``   withheld by ``skip_book`` / ``skip_trades`` (the exchange "lost" it);
* ``dropped``   still queued when the connection closed or was dropped;
* ``too_slow``  discarded when the connection was closed for ``connection_too_slow``.

Rows carry the identity keys of the archive tables (``tickarchive.tables`` dedup keys),
so an external harness can anti-join them against what the collector stored:

=============== =================================================================
table           columns (plus ``connection``, ``status``, ``wall_us``, ``channel``)
=============== =================================================================
quotes          instrument, ts_us
trades          instrument, trade_id, trade_seq, ts_us   (one row per trade)
book_changes    instrument, change_id, prev_change_id (null on snapshots), n_rows,
                is_snapshot, ts_us   (one row per book message; n_rows = the rows stored:
                level rows, plus one 'empty' row per side a snapshot shows empty)
index_ticks     index_name, ts_us
instruments     instrument, state, ts_us   (instrument.state notifications)
=============== =================================================================

Rows are buffered (one entry per ``record`` call) and spooled every ``batch_rows`` rows to
``<dir>/<table>/part-NNNNN.arrow`` (Arrow IPC, zstd, strings dictionary-encoded: several
times cheaper to write than Parquet, about as small), so memory stays bounded however
long the run. The parts are internal; ``export(dest)``
writes one ``<table>.parquet`` per table (streamed part by part), ``faults.parquet``,
``faults.json``, ``connections.json`` (when each connection opened and closed, and how)
and ``summary.json``. Frames generated while a connection is closed are due to nobody
and not logged: the connection's closed window says what it could not see.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from tickarchive.loadtest.errors import SendLogError
from tickarchive.loadtest.sim.encode import BOOK as BOOK
from tickarchive.loadtest.sim.encode import INDEX as INDEX
from tickarchive.loadtest.sim.encode import QUOTES as QUOTES
from tickarchive.loadtest.sim.encode import STATES as STATES
from tickarchive.loadtest.sim.encode import TRADES as TRADES
from tickarchive.loadtest.sim.encode import Record
from tickarchive.loadtest.sim.faults import FaultRecord

SENT = "sent"
SILENCED = "silenced"
SKIPPED = "skipped"
DROPPED = "dropped"
TOO_SLOW = "too_slow"

_COMMON = [
    ("connection", pa.string()),
    ("status", pa.string()),
    ("wall_us", pa.int64()),
    ("channel", pa.string()),
]
SCHEMAS: dict[str, pa.Schema] = {
    QUOTES: pa.schema([*_COMMON, ("instrument", pa.string()), ("ts_us", pa.int64())]),
    TRADES: pa.schema(
        [
            *_COMMON,
            ("instrument", pa.string()),
            ("trade_id", pa.string()),
            ("trade_seq", pa.int64()),
            ("ts_us", pa.int64()),
        ]
    ),
    BOOK: pa.schema(
        [
            *_COMMON,
            ("instrument", pa.string()),
            ("change_id", pa.int64()),
            ("prev_change_id", pa.int64()),
            ("n_rows", pa.int32()),
            ("is_snapshot", pa.bool_()),
            ("ts_us", pa.int64()),
        ]
    ),
    INDEX: pa.schema([*_COMMON, ("index_name", pa.string()), ("ts_us", pa.int64())]),
    STATES: pa.schema([*_COMMON, ("instrument", pa.string()), ("state", pa.string()), ("ts_us", pa.int64())]),
}
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    QUOTES: ("instrument", "ts_us"),
    TRADES: ("instrument", "trade_id", "trade_seq", "ts_us"),
    BOOK: ("instrument", "change_id", "prev_change_id", "n_rows", "ts_us"),
    INDEX: ("index_name", "ts_us"),
    STATES: ("instrument", "state", "ts_us"),
}
TABLES = tuple(SCHEMAS)
FAULT_SCHEMA = pa.schema(
    [
        ("fault_id", pa.int64()),
        ("kind", pa.string()),
        ("connection", pa.string()),
        ("start_us", pa.int64()),
        ("end_us", pa.int64()),
        ("instruments", pa.list_(pa.string())),
        ("params", pa.string()),
        ("detail", pa.string()),
    ]
)


_IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd")


def _column(values: list[Any], type_: pa.DataType) -> pa.Array:
    """An arrow column; strings (channel and instrument names, a few thousand distinct)
    as a dictionary array of their distinct values, several times faster than converting
    each (``_read_part`` casts them back to plain strings)."""
    if type_ != pa.string():
        return pa.array(values, type=type_)
    codes: dict[str, int] = {}
    index = [codes.setdefault(v, len(codes)) for v in values]
    return pa.DictionaryArray.from_arrays(pa.array(index, type=pa.int32()), pa.array(list(codes), type=type_))


def _read_part(path: Path, table: str) -> pa.Table:
    """One spooled part (Arrow IPC) with the table's schema (dictionaries decoded)."""
    with ipc.open_file(pa.memory_map(str(path))) as reader:
        return reader.read_all().cast(SCHEMAS[table])


class SendLog:
    """Owned by one simulator; all methods run on its event loop (no locking)."""

    def __init__(self, directory: Path | None = None, batch_rows: int = 200_000) -> None:
        self._owns_dir = directory is None
        try:
            self.directory = Path(tempfile.mkdtemp(prefix="tickarchive-sendlog-")) if directory is None else directory
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SendLogError(f"cannot create send-log directory {directory}: {exc}") from exc
        # A temporary spool directory goes away with the log (or at interpreter exit at
        # the latest), so in-process simulators leave nothing behind in /tmp.
        self._remove_spool = (
            weakref.finalize(self, shutil.rmtree, str(self.directory), ignore_errors=True) if self._owns_dir else None
        )
        self.batch_rows = batch_rows
        self._chunks: list[tuple[str, str, int, list[Record]]] = []
        self._pending = 0
        self._parts: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._counts: Counter[tuple[str, str, str]] = Counter()
        """(table, connection, status) -> rows spooled so far."""
        self.faults: list[FaultRecord] = []
        self.connections: dict[str, dict[str, Any]] = {}
        """Connection id -> {remote, connected_us, closed_us, close_code, close_reason}."""
        self.control_frames: Counter[str] = Counter()
        """Frames that are not market data: 'malformed', 'unknown_channel', 'response', ..."""

    # ---- recording (hot path) -------------------------------------------------------

    def record(self, connection: str, status: str, wall_us: int, records: list[Record]) -> None:
        """Log ``records`` (a list the caller will not change) with one status. O(1) per
        call: rows are split by table and columnised when spooled."""
        self._chunks.append((connection, status, wall_us, records))
        self._pending += len(records)
        if self._pending >= self.batch_rows:
            self.flush()

    def add_fault(self, fault: FaultRecord) -> FaultRecord:
        self.faults.append(fault)
        return fault

    # ---- spooling -------------------------------------------------------------------

    def _spool(self, table: str, chunks: list[tuple[str, str, int, list[Record]]]) -> None:
        """Columnise one table's records and write them as the next part file."""
        schema = SCHEMAS[table]
        n_keys = len(schema) - 4
        # connection, status and wall_us are constant per chunk: one value per chunk,
        # repeated by arrow; channel and the keys are columns of the records.
        chunk_conn: list[str] = []
        chunk_status: list[str] = []
        chunk_wall: list[int] = []
        chunk_rows: list[int] = []
        chan_col: list[str] = []
        key_cols: list[list[Any]] = [[] for _ in range(n_keys)]
        counts = self._counts
        for conn, status, wall, recs in chunks:
            flat = [(rec[1], *key) for rec in recs for key in rec[2]] if table == TRADES else recs
            if not flat:
                continue
            counts[(table, conn, status)] += len(flat)
            chunk_conn.append(conn)
            chunk_status.append(status)
            chunk_wall.append(wall)
            chunk_rows.append(len(flat))
            transposed = list(zip(*flat, strict=True))  # (table,) channel, keys...
            if table != TRADES:
                del transposed[0]
            chan_col.extend(transposed[0])
            for col, values in zip(key_cols, transposed[1:], strict=True):
                col.extend(values)
        if not chunk_rows:
            return
        which = pa.array(np.repeat(np.arange(len(chunk_rows), dtype=np.int32), chunk_rows))
        constant = [
            pa.DictionaryArray.from_arrays(which, pa.array(chunk_conn, type=pa.string())),
            pa.DictionaryArray.from_arrays(which, pa.array(chunk_status, type=pa.string())),
            pa.array(chunk_wall, type=pa.int64()).take(which),
        ]
        varying = [_column(col, f.type) for col, f in zip([chan_col, *key_cols], list(schema)[3:], strict=True)]
        data = pa.Table.from_arrays([*constant, *varying], names=schema.names)
        self._parts[table] += 1
        path = self.directory / table / f"part-{self._parts[table]:05d}.arrow"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, data.schema, options=_IPC_OPTIONS) as writer:
                writer.write_table(data)
        except (OSError, pa.ArrowException) as exc:
            raise SendLogError(f"cannot write send-log part {path}: {exc}") from exc

    def flush(self) -> None:
        """Write every buffered row to part files (one per table with rows)."""
        if not self._chunks:
            return
        chunks, self._chunks, self._pending = self._chunks, [], 0
        by_table: dict[str, list[tuple[str, str, int, list[Record]]]] = {t: [] for t in TABLES}
        for conn, status, wall, recs in chunks:
            tables = {rec[0] for rec in recs}
            if len(tables) == 1:
                by_table[recs[0][0]].append((conn, status, wall, recs))
            else:
                for table in tables:
                    by_table[table].append((conn, status, wall, [r for r in recs if r[0] == table]))
        for table, table_chunks in by_table.items():
            if table_chunks:
                self._spool(table, table_chunks)

    def part_files(self, table: str) -> list[Path]:
        return sorted((self.directory / table).glob("part-*.arrow"))

    def read(self, table: str) -> pa.Table:
        """Every row of ``table`` so far (flushes first). For big runs prefer ``export``."""
        if table not in SCHEMAS:
            raise SendLogError(f"unknown send-log table {table!r}; known: {', '.join(TABLES)}")
        self.flush()
        try:
            parts = [_read_part(p, table) for p in self.part_files(table)]
        except (OSError, pa.ArrowException) as exc:
            raise SendLogError(f"cannot read send log {table}: {exc}") from exc
        if not parts:
            return SCHEMAS[table].empty_table()
        return pa.concat_tables(parts)

    # ---- queries --------------------------------------------------------------------

    def keys(
        self, table: str, status: str | None = SENT, connection: str | None = None, channel: str | None = None
    ) -> set[tuple[Any, ...]]:
        """The identity keys of ``table`` rows with that status/connection/channel
        (``None`` = any), as a set of tuples in ``KEY_COLUMNS[table]`` order."""
        data = self._filtered(table, status, connection, channel)
        cols = [data.column(c).to_pylist() for c in KEY_COLUMNS[table]]
        return set(zip(*cols, strict=True))

    def rows(
        self, table: str, status: str | None = SENT, connection: str | None = None, channel: str | None = None
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._filtered(table, status, connection, channel).to_pylist()
        return rows

    def _filtered(self, table: str, status: str | None, connection: str | None, channel: str | None) -> pa.Table:
        data = self.read(table)
        for column, value in (("status", status), ("connection", connection), ("channel", channel)):
            if value is not None:
                data = data.filter(pc.equal(data.column(column), value))
        return data

    @property
    def counts(self) -> Counter[tuple[str, str, str]]:
        """(table, connection, status) -> rows (trades: one per trade). Flushes first."""
        self.flush()
        return self._counts

    def count(self, table: str, status: str = SENT, connection: str | None = None) -> int:
        return sum(n for (t, c, s), n in self.counts.items() if t == table and s == status and connection in (None, c))

    def summary(self, per_instrument: bool = False) -> dict[str, Any]:
        """Counts per table/status, per connection, per channel; with ``per_instrument``
        also sent rows per instrument and trade_seq ranges (reads the spooled parts)."""
        tables: dict[str, dict[str, int]] = {t: {} for t in TABLES}
        by_conn: dict[str, dict[str, dict[str, int]]] = {}
        for (table, conn, status), n in sorted(self.counts.items()):
            tables[table][status] = tables[table].get(status, 0) + n
            by_conn.setdefault(conn, {}).setdefault(table, {})[status] = n
        out: dict[str, Any] = {
            "directory": str(self.directory),
            "tables": tables,
            "by_connection": by_conn,
            "faults": [f.as_dict() for f in self.faults],
            "connections": self.connections,
            "control_frames": dict(self.control_frames),
        }
        if per_instrument:
            import polars as pl

            by_channel: dict[str, dict[str, int]] = {}
            for table in TABLES:
                frame = pl.from_arrow(self.read(table).select(["channel", "status"]))
                assert isinstance(frame, pl.DataFrame)
                for ch, status, n in frame.group_by(["channel", "status"]).len().iter_rows():
                    by_channel.setdefault(ch, {})[status] = by_channel.setdefault(ch, {}).get(status, 0) + n
            out["by_channel"] = by_channel
            out["per_instrument"] = {}
            for table in (QUOTES, TRADES, BOOK, STATES):
                frame = pl.from_arrow(self._filtered(table, SENT, None, None).select(["instrument"]))
                assert isinstance(frame, pl.DataFrame)
                out["per_instrument"][table] = dict(frame.group_by("instrument").len().iter_rows())
            trades = pl.from_arrow(self._filtered(TRADES, SENT, None, None).select(["instrument", "trade_seq"]))
            assert isinstance(trades, pl.DataFrame)
            seq = trades.group_by("instrument").agg(
                pl.col("trade_seq").min().alias("min"),
                pl.col("trade_seq").max().alias("max"),
                pl.col("trade_seq").n_unique().alias("distinct"),
            )
            out["trade_seq"] = {inst: {"min": lo, "max": hi, "distinct": n} for inst, lo, hi, n in seq.iter_rows()}
        return out

    # ---- export ---------------------------------------------------------------------

    def export(self, dest: Path) -> dict[str, str]:
        """Write ``dest/<table>.parquet`` per table, ``faults.parquet``, ``faults.json`` and
        ``summary.json``; returns name -> path. Memory: one part file at a time."""
        self.flush()
        written: dict[str, str] = {}
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for table in TABLES:
                path = dest / f"{table}.parquet"
                with pq.ParquetWriter(path, SCHEMAS[table], compression="zstd") as writer:
                    for part in self.part_files(table):
                        writer.write_table(_read_part(part, table))
                written[table] = str(path)
            faults = [f.as_dict() for f in self.faults]
            rows = [dict(f, params=json.dumps(f["params"], sort_keys=True)) for f in faults]
            pq.write_table(pa.Table.from_pylist(rows, schema=FAULT_SCHEMA), dest / "faults.parquet")
            (dest / "faults.json").write_text(json.dumps(faults, indent=2))
            (dest / "connections.json").write_text(json.dumps(self.connections, indent=2))
            (dest / "summary.json").write_text(json.dumps(self.summary(), indent=2))
        except (OSError, pa.ArrowException) as exc:
            raise SendLogError(f"cannot export the send log to {dest}: {exc}") from exc
        written["faults"] = str(dest / "faults.parquet")
        written["faults_json"] = str(dest / "faults.json")
        written["connections"] = str(dest / "connections.json")
        written["summary"] = str(dest / "summary.json")
        return written

    def cleanup(self) -> None:
        """Delete the spool directory if the log created it (a temporary directory)."""
        if self._remove_spool is not None:
            self._remove_spool()
