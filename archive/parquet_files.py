"""Writing one (table, month) as sorted, zstd-compressed Parquet parts.

The input must already be ordered by (``segment_by``, ``ts``) — the warm store sorts
cheaply on its compression order — and the writer checks that it is, batch by batch
and across batch boundaries, so an unsorted source fails loudly instead of producing
files whose ``sorting_columns`` metadata lies. Rows are buffered into row groups of
exactly ``row_group_rows`` (the last one smaller) and files of at most ``file_rows``.
Each part is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickarchive import rows
from tickarchive.archive import layout
from tickarchive.archive.errors import ArchiveError, UnsortedInput
from tickarchive.archive.hashing import Digests, file_digests
from tickarchive.months import Month
from tickarchive.tables import ColumnType, Table

SCHEMA_VERSION = 1
"""Version of the archive's Parquet layout; stored in each file's key-value metadata."""

META_SCHEMA_VERSION = b"tickarchive.schema_version"
META_TABLE = b"tickarchive.table"
META_SORT = b"tickarchive.sort_columns"


def sort_columns(table: Table) -> tuple[str, ...]:
    return (table.segment_by, "ts")


DICT = "dict"
PLAIN = "plain"
DELTA = "delta"
ENCODING_SAMPLE_ROWS = 100_000
"""Rows of a file's first row group the encodings are chosen on."""


def candidate_encodings(table: Table, column: str) -> tuple[str, ...]:
    """The lossless encodings tried per column type: text is always dictionary-encoded;
    numbers try a dictionary (repeating values: IVs, sizes, ids), plain (values that change
    every row: greeks), and integers and timestamps also delta (sorted times, ids).
    BYTE_STREAM_SPLIT never won on this data (docs/cost-model.md) and is not tried."""
    typ = table.column(column).type
    if typ in (ColumnType.SYMBOL, ColumnType.VARCHAR, ColumnType.BOOLEAN):
        return (DICT,)
    if typ in (ColumnType.TIMESTAMP, ColumnType.LONG, ColumnType.INT):
        return (DICT, PLAIN, DELTA)
    return (DICT, PLAIN)


def _options(encodings: dict[str, str], zstd_level: int) -> dict[str, Any]:
    return {
        "compression": "zstd",
        "compression_level": zstd_level,
        "use_dictionary": [c for c, e in encodings.items() if e == DICT],
        "column_encoding": {c: ("DELTA_BINARY_PACKED" if e == DELTA else "PLAIN")
                            for c, e in encodings.items() if e != DICT},
        "write_statistics": True,
        "store_schema": True,
    }


def choose_encodings(table: Table, sample: pa.Table, zstd_level: int) -> dict[str, str]:
    """Per column, the candidate encoding that stores ``sample`` (the first rows of a file,
    already sorted) in the fewest bytes at ``zstd_level``: measured, not guessed, so a
    month of other data gets what suits it. Ties go to the first candidate."""
    out: dict[str, str] = {}
    for name in sample.column_names:
        cands = candidate_encodings(table, name)
        if len(cands) == 1:
            out[name] = cands[0]
            continue
        col = sample.select([name])
        best: tuple[int, str] | None = None
        for enc in cands:
            buf = pa.BufferOutputStream()
            pq.write_table(col, buf, **_options({name: enc}, zstd_level))
            size = buf.getvalue().size
            if best is None or size < best[0]:
                best = (size, enc)
        assert best is not None
        out[name] = best[1]
    return out


def writer_options(table: Table, zstd_level: int, encodings: dict[str, str] | None = None) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter`` options of the archive's files for ``table``:
    zstd, statistics, and per column the encoding ``encodings`` gives (default: a
    dictionary for every column, Arrow's default)."""
    if encodings is None:
        encodings = {c: DICT for c in table.column_names}
    return _options(encodings, zstd_level)


def fast_writer_options(table: Table, zstd_level: int = 1) -> dict[str, Any]:
    """Options for intermediate files written at speed (replay output): dictionary pages
    only for text columns, fast zstd."""
    text = [c.name for c in table.columns if c.type in (ColumnType.SYMBOL, ColumnType.VARCHAR)]
    return {
        "compression": "zstd",
        "compression_level": zstd_level,
        "use_dictionary": text,
        "write_statistics": True,
        "store_schema": True,
    }


def file_schema(table: Table) -> pa.Schema:
    """``tickarchive.rows.arrow_schema(table)`` plus the archive's key-value metadata."""
    base = rows.arrow_schema(table)
    meta = dict(base.metadata or {})
    meta[META_SCHEMA_VERSION] = str(SCHEMA_VERSION).encode()
    meta[META_TABLE] = table.name.encode()
    meta[META_SORT] = ",".join(sort_columns(table)).encode()
    return base.with_metadata(meta)


def schema_fingerprint(table: Table) -> str:
    text = ";".join(f"{f.name}:{f.type}:{int(f.nullable)}" for f in rows.arrow_schema(table))
    return hashlib.sha256(text.encode()).hexdigest()


def sort_table(table: Table, data: pa.Table) -> pa.Table:
    """``data`` sorted by the archive order (for sources that hold rows in memory)."""
    return data.sort_by([(c, "ascending") for c in sort_columns(table)])


@dataclass(frozen=True, slots=True)
class WrittenPart:
    local_path: Path
    key: str
    rows: int
    row_groups: int
    min_ts_us: int | None
    max_ts_us: int | None
    digests: Digests


class MonthWriter:
    """Writes sorted batches of one (table, month) into Parquet parts under ``staging``."""

    def __init__(
        self,
        table: Table,
        month: Month,
        staging: Path,
        *,
        generation: int,
        zstd_level: int,
        row_group_rows: int,
        file_rows: int,
    ) -> None:
        if row_group_rows < 1 or file_rows < 1:
            raise ArchiveError("row_group_rows and file_rows must be positive")
        self.table = table
        self.month = month
        self.staging = staging
        self.generation = generation
        self.zstd_level = zstd_level
        self.row_group_rows = row_group_rows
        self.file_rows = max(file_rows, row_group_rows)
        self.schema = file_schema(table)
        self._seg = table.segment_by
        self._seg_index = self.schema.get_field_index(self._seg)
        self._ts_index = self.schema.get_field_index("ts")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._last: tuple[str, int] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp_path: Path | None = None
        self._file_rows_written = 0
        self._file_groups = 0
        self._file_min: int | None = None
        self._file_max: int | None = None
        self.parts: list[WrittenPart] = []
        self.rows_in = 0

    # -- input -----------------------------------------------------------------------
    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        try:
            batch = batch.select(list(self.schema.names)).cast(self.schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise ArchiveError(f"{self.table.name}: batch does not match the table schema: {exc}") from None
        self._check(batch)
        self.rows_in += batch.num_rows
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= self._room():
            self._flush_group(self._room())

    def _check(self, batch: pa.RecordBatch) -> None:
        seg = batch.column(self._seg_index)
        ts = batch.column(self._ts_index).cast(pa.int64())
        name = self.table.name
        if seg.null_count or ts.null_count:
            raise ArchiveError(f"{name} {self.month}: NULL in {self._seg} or ts")
        lo, hi = pc.min_max(ts).values()
        if lo.as_py() < self.month.start_us or hi.as_py() >= self.month.end_us:
            raise ArchiveError(f"{name} {self.month}: source yielded a row outside the month (ts {lo}..{hi})")
        first = (seg[0].as_py(), ts[0].as_py())
        if self._last is not None and first < self._last:
            raise UnsortedInput(f"{name} {self.month}: batch starts at {first}, before previous row {self._last}")
        n = batch.num_rows
        if n > 1:
            s0, s1 = seg.slice(0, n - 1), seg.slice(1)
            t0, t1 = ts.slice(0, n - 1), ts.slice(1)
            ok = pc.or_(pc.less(s0, s1), pc.and_(pc.equal(s0, s1), pc.less_equal(t0, t1)))
            if not pc.all(ok).as_py():
                raise UnsortedInput(f"{name} {self.month}: rows not ordered by ({self._seg}, ts)")
        self._last = (seg[n - 1].as_py(), ts[n - 1].as_py())

    # -- output ----------------------------------------------------------------------
    def _room(self) -> int:
        return min(self.row_group_rows, self.file_rows - self._file_rows_written)

    def _flush_group(self, n: int) -> None:
        data = pa.Table.from_batches(self._pending, schema=self.schema)
        group, rest = data.slice(0, n), data.slice(n)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        self._write_group(group)

    def _write_group(self, group: pa.Table) -> None:
        if group.num_rows == 0:
            return
        if self._writer is None:
            self._open(group)
        assert self._writer is not None
        self._writer.write_table(group, row_group_size=group.num_rows)
        ts = group.column(self._ts_index).cast(pa.int64())
        lo, hi = (v.as_py() for v in pc.min_max(ts).values())
        self._file_min = lo if self._file_min is None else min(self._file_min, lo)
        self._file_max = hi if self._file_max is None else max(self._file_max, hi)
        self._file_rows_written += group.num_rows
        self._file_groups += 1
        if self._file_rows_written >= self.file_rows:
            self._close_file()

    def _open(self, first_group: pa.Table) -> None:
        part = len(self.parts)
        key = layout.part_key(self.table.name, self.month, part, self.generation)
        final = self.staging / key
        final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_path = final.parent / f".{final.name}.tmp"
        sorting = [pq.SortingColumn(self._seg_index), pq.SortingColumn(self._ts_index)]
        self._writer = pq.ParquetWriter(
            str(self._tmp_path),
            self.schema,
            sorting_columns=sorting,
            **writer_options(self.table, self.zstd_level, self.encodings(first_group)),
        )

    def encodings(self, first_group: pa.Table) -> dict[str, str]:
        """The encodings of a new part: chosen on its first rows (``choose_encodings``)."""
        return choose_encodings(self.table, first_group.slice(0, ENCODING_SAMPLE_ROWS), self.zstd_level)

    def _close_file(self) -> None:
        assert self._writer is not None
        assert self._tmp_path is not None
        self._writer.close()
        self._writer = None
        key = layout.part_key(self.table.name, self.month, len(self.parts), self.generation)
        final = self.staging / key
        os.replace(self._tmp_path, final)
        self.parts.append(
            WrittenPart(
                local_path=final,
                key=key,
                rows=self._file_rows_written,
                row_groups=self._file_groups,
                min_ts_us=self._file_min,
                max_ts_us=self._file_max,
                digests=file_digests(final),
            )
        )
        self._tmp_path = None
        self._file_rows_written = 0
        self._file_groups = 0
        self._file_min = self._file_max = None

    def finish(self) -> list[WrittenPart]:
        """Flush what is buffered and close the last part; returns every part written."""
        while self._pending_rows:
            self._flush_group(min(self._room(), self._pending_rows))
        if self._writer is not None:
            self._close_file()
        return self.parts

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> MonthWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()


@dataclass(frozen=True, slots=True)
class PartSummary:
    rows: int
    row_groups: int
    min_ts_us: int | None
    max_ts_us: int | None
    schema_version: int | None


def read_summary(path: Path) -> PartSummary:
    """Row count and ts range of a Parquet part, decoding the ts column (proves it reads)."""
    try:
        pf = pq.ParquetFile(str(path))
        meta = pf.schema_arrow.metadata or {}
        version = meta.get(META_SCHEMA_VERSION)
        ts = pf.read(columns=["ts"]).column("ts").cast(pa.int64())
    except (pa.ArrowException, OSError) as exc:
        raise ArchiveError(f"unreadable Parquet: {exc}") from None
    lo, hi = (v.as_py() for v in pc.min_max(ts).values()) if len(ts) else (None, None)
    return PartSummary(
        rows=pf.metadata.num_rows,
        row_groups=pf.metadata.num_row_groups,
        min_ts_us=lo,
        max_ts_us=hi,
        schema_version=int(version) if version is not None else None,
    )
