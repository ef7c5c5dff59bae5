"""Replay's Parquet output: ``DIR/<table>.parquet`` per table, sorted like the archive and
deduplicated the way QuestDB deduplicates.

QuestDB's tables have ``DEDUP UPSERT KEYS`` (``tickarchive.tables``: each table's
``dedup_keys``): a row whose key is already there replaces it, so the last row written
wins. Replay output gets the same rows: rows with equal dedup keys collapse into the one
read last (the input order: file by file, frame by frame, row by row in a frame). The
files are sorted by (``segment_by``, ``ts``, the rest of the dedup key), the archive's
order, so ``archive export --from-dir DIR`` reads them as they are.

Memory is bounded: rows are buffered per table up to ``run_rows``; a full buffer is
sorted, deduplicated and spilled to an Arrow IPC *run* in a private directory; at the
end the runs are merged instrument by instrument (memory-mapped) into the final file,
with the duplicates between runs removed. Each file is written under a temporary name
and renamed only when complete, so a failed replay never leaves half a file behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from tickarchive import rows
from tickarchive import tables as t
from tickarchive.archive.parquet_files import fast_writer_options
from tickarchive.ingest.errors import ReplayError
from tickarchive.venue import ORD_COLUMN

RUN_ROWS: Final = 1_000_000
"""Rows of one table buffered before they are spilled as a sorted run."""
MERGE_ROWS: Final = 500_000
"""Rows merged and written at a time when runs are merged."""
OUTPUT_ZSTD_LEVEL: Final = 1
"""zstd level of replay output (an intermediate: the archive re-encodes it)."""


def sort_keys(table: t.Table) -> list[str]:
    """(segment_by, ts, the rest of the dedup key): the output order; rows with equal keys
    are then adjacent."""
    keys = [table.segment_by, "ts"]
    keys += [k for k in table.dedup_keys if k not in keys]
    return keys


def with_ord_schema(table: t.Table) -> pa.Schema:
    return rows.arrow_schema(table).append(pa.field(ORD_COLUMN, pa.uint64(), nullable=False))


def _numeric_key(col: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """A string column as the rank of each value in byte order (a cheap sort key)."""
    if not pa.types.is_string(col.type):
        return col
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    enc = pc.dictionary_encode(col)
    rank = pc.rank(enc.dictionary, sort_keys="ascending", tiebreaker="first").cast(pa.int32())
    return rank.take(enc.indices)


def sorted_order(table: t.Table, data: pa.Table) -> pa.Array:
    """The row indices of ``data`` in ``sort_keys`` order (then input order), keeping of
    each group of rows with equal dedup keys only the last one read. Only the key columns
    are reordered here.

    Key columns without NULLs are sorted by NumPy (``np.lexsort``: a stable sort per key,
    from the last to the first; text as the rank of each value in byte order), several
    times faster than Arrow's multi-key ``sort_indices``; the result is the same (floats:
    NaN after every number, -0.0 equal to 0.0, NaN never equal to NaN). Key columns with
    NULLs take Arrow's way (``sorted_order_arrow``)."""
    keys = sort_keys(table)
    columns = _numpy_keys(data, [*keys, ORD_COLUMN])
    if columns is None:
        return sorted_order_arrow(table, data)
    order = _lexsort(columns)
    n = len(order)
    if n >= 2:
        differs = np.zeros(n - 1, np.bool_)
        for col in columns[:-1]:
            s = col[order]
            differs |= s[1:] != s[:-1]
        if not differs.all():
            order = order[np.append(differs, True)]
    return pa.array(order)


def _lexsort(columns: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """``np.lexsort(columns[::-1])`` (the first column the primary key, the last the input
    order), done as stable sorts from the last key to the first: the input order is often
    sorted already (no sort then), and a key of small non-negative integers (the rank of a
    text) is sorted as 16 bits (NumPy's radix sort)."""
    *keys, last = columns
    n = len(last)
    order = np.arange(n) if n < 2 or bool(np.all(last[1:] >= last[:-1])) else np.argsort(last, kind="stable")
    for key in reversed(keys):
        k = key[order]
        if k.dtype.kind in "iu" and n and int(k.min()) >= 0 and int(k.max()) < 1 << 16:
            k = k.astype(np.uint16)
        order = order[np.argsort(k, kind="stable")]
    return order


def _numpy_keys(data: pa.Table, names: list[str]) -> list[np.ndarray[Any, Any]] | None:
    """The columns ``names`` as NumPy arrays that sort and compare as the columns do, or
    ``None`` when one holds a NULL or is of a type not handled here."""
    out: list[np.ndarray[Any, Any]] = []
    for name in names:
        col = data.column(name)
        if col.null_count:
            return None
        typ = col.type
        if pa.types.is_string(typ):
            col = _numeric_key(col)
        elif pa.types.is_timestamp(typ):
            col = col.cast(pa.int64())
        elif not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
            return None
        out.append(col.to_numpy())
    return out


def sorted_order_arrow(table: t.Table, data: pa.Table) -> pa.Array:
    """``sorted_order`` by Arrow's ``sort_indices`` (key columns with NULLs: two NULLs are
    equal keys, a NULL and a value are not)."""
    n = data.num_rows
    keys = sort_keys(table)
    names = [*keys, ORD_COLUMN]
    order_by = pa.table({f"k{i}": _numeric_key(data.column(k)) for i, k in enumerate(names)})
    order = pc.sort_indices(order_by, [(f"k{i}", "ascending") for i in range(len(names))])
    if n < 2:
        return order
    differs: pa.Array | None = None
    for k in keys:
        col = data.column(k).take(order)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        a, b = col.slice(0, n - 1), col.slice(1)
        ne = pc.not_equal(a, b)
        if ne.null_count:  # two NULLs are equal keys, a NULL and a value are not
            ne = pc.if_else(pc.is_null(ne), pc.xor(pc.is_null(a), pc.is_null(b)), ne)
        differs = ne if differs is None else pc.or_(differs, ne)
    assert differs is not None
    keep = pa.concat_arrays([differs, pa.array([True])])
    if pc.all(keep).as_py():
        return order
    return order.filter(keep)


def sort_dedup(table: t.Table, data: pa.Table) -> pa.Table:
    """``data`` sorted by ``sort_keys`` and the input order, keeping of each group of rows
    with equal dedup keys only the last one read."""
    if data.num_rows == 0:
        return data
    return take(data, sorted_order(table, data))


def take(data: pa.Table, indices: pa.Array) -> pa.Table:
    """``data.take(indices)``, except that a column of NULLs only (the columns of other
    instrument kinds: an option has no funding rate) becomes a slice of one shared
    column of NULLs instead of being concatenated and gathered."""
    n = len(indices)
    columns = []
    for col in data.columns:
        if col.null_count == len(col):
            columns.append(rows.null_column(col.type, n))
        else:
            columns.append(pc.take(col, indices, boundscheck=False))  # the indices come from sorted_order
    return pa.Table.from_arrays(columns, schema=data.schema)



class _TableOutput:
    """The buffer, runs and final file of one table."""

    def __init__(self, table: t.Table, directory: Path, spill: Path, run_rows: int, zstd_level: int) -> None:
        self.table = table
        self.schema = with_ord_schema(table)
        self.final = directory / f"{table.name}.parquet"
        self.tmp = directory / f".{table.name}.parquet.partial"
        self.spill = spill
        self.run_rows = run_rows
        self.zstd_level = zstd_level
        self.chunks: list[pa.Table] = []
        self.buffered = 0
        self.runs: list[Path] = []
        self.rows_in = 0

    def add(self, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        if not data.schema.equals(self.schema):
            data = data.cast(self.schema)
        self.chunks.append(data)
        self.buffered += data.num_rows
        self.rows_in += data.num_rows
        if self.buffered >= self.run_rows:
            self._spill()

    def _take_buffer(self) -> pa.Table:
        data = pa.concat_tables(self.chunks) if self.chunks else self.schema.empty_table()
        self.chunks = []
        self.buffered = 0
        return sort_dedup(self.table, data)

    def _buffer_parts(self) -> Iterator[pa.Table]:
        """The buffer sorted and deduplicated, ``MERGE_ROWS`` rows at a time (the whole
        sorted table is never held: each part is gathered from the buffer when written)."""
        data = pa.concat_tables(self.chunks) if self.chunks else self.schema.empty_table()
        self.chunks = []
        self.buffered = 0
        if data.num_rows == 0:
            return
        order = sorted_order(self.table, data)
        for at in range(0, len(order), MERGE_ROWS):
            yield take(data, order.slice(at, MERGE_ROWS))

    def _spill(self) -> None:
        data = self._take_buffer()
        path = self.spill / f"{self.table.name}-{len(self.runs):05d}.arrow"
        with pa.OSFile(str(path), "wb") as f, ipc.new_file(f, self.schema) as w:
            w.write_table(data, max_chunksize=MERGE_ROWS)
        self.runs.append(path)

    def finish(self) -> int:
        """Write the final file; returns its row count."""
        out_schema = rows.arrow_schema(self.table)
        written = 0
        with pq.ParquetWriter(str(self.tmp), out_schema, **fast_writer_options(self.table, self.zstd_level)) as w:
            for part in self._sorted_parts():
                if part.num_rows:
                    part = part.drop_columns([ORD_COLUMN]).cast(out_schema)
                    w.write_table(part, row_group_size=max(part.num_rows, 1))
                    written += part.num_rows
        self.tmp.replace(self.final)
        return written

    def _sorted_parts(self) -> Iterator[pa.Table]:
        if not self.runs:
            yield from self._buffer_parts()
            return
        if self.buffered:
            self._spill()
        yield from _merge(self.table, self.runs)

    def abort(self) -> None:
        self.chunks = []
        self.tmp.unlink(missing_ok=True)


def _groups(run: pa.Table, seg: str) -> dict[str, tuple[int, int]]:
    """Row range of each segment value in a run sorted by it."""
    col = run.column(seg).combine_chunks()
    n = len(col)
    if n == 0:
        return {}
    change = pc.not_equal(col.slice(1), col.slice(0, n - 1))
    starts = [0, *(i + 1 for i in pc.indices_nonzero(change).to_pylist())]
    ends = [*starts[1:], n]
    names = col.take(pa.array(starts)).to_pylist()
    return {name: (a, b) for name, a, b in zip(names, starts, ends, strict=True)}


def _merge(table: t.Table, runs: Sequence[Path]) -> Iterator[pa.Table]:
    """The runs (each sorted and deduplicated) merged in sort order, deduplicated across."""
    tables = [ipc.open_file(pa.memory_map(str(p), "r")).read_all() for p in runs]
    groups = [_groups(r, table.segment_by) for r in tables]
    names = sorted({n for g in groups for n in g})
    pending: list[pa.Table] = []
    size = 0
    for name in names:
        for run, g in zip(tables, groups, strict=True):
            span = g.get(name)
            if span is not None:
                pending.append(run.slice(span[0], span[1] - span[0]))
                size += span[1] - span[0]
        if size >= MERGE_ROWS:
            yield sort_dedup(table, pa.concat_tables(pending))
            pending, size = [], 0
    if pending:
        yield sort_dedup(table, pa.concat_tables(pending))


class ParquetSink:
    """``DIR/<table>.parquet`` for every output table (empty tables included), sorted and
    deduplicated (see the module docstring). ``add`` takes Arrow tables with the table's
    schema plus ``ORD_COLUMN`` (the input order)."""

    columnar = True

    def __init__(
        self,
        directory: Path,
        tables: Sequence[t.Table],
        *,
        run_rows: int = RUN_ROWS,
        zstd_level: int = OUTPUT_ZSTD_LEVEL,
    ) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._spill = Path(tempfile.mkdtemp(prefix=".replay-runs-", dir=self.directory))
        except OSError as exc:
            raise ReplayError(f"cannot create output directory {directory}: {exc.strerror}") from exc
        self._out = {
            tbl.name: _TableOutput(tbl, self.directory, self._spill, run_rows, zstd_level) for tbl in tables
        }

    def add(self, table: t.Table, data: pa.Table) -> None:
        try:
            self._out[table.name].add(data)
        except (OSError, pa.ArrowException) as exc:
            raise ReplayError(f"cannot buffer {table.name} rows in {self._spill}: {exc}") from exc

    def close(self) -> dict[str, int]:
        """Write every file; returns the rows written per table (after deduplication)."""
        counts: dict[str, int] = {}
        try:
            for name, out in self._out.items():
                counts[name] = out.finish()
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise ReplayError(f"cannot finish Parquet output in {self.directory}: {exc}") from exc
        shutil.rmtree(self._spill, ignore_errors=True)
        return counts

    def rows_in(self) -> dict[str, int]:
        """Rows received per table (before deduplication)."""
        return {name: out.rows_in for name, out in self._out.items()}

    def abort(self) -> None:
        for out in self._out.values():
            out.abort()
        shutil.rmtree(self._spill, ignore_errors=True)
