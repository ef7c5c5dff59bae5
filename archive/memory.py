"""An in-memory source and sink (tests, benchmarks, and the contract's reference)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from tickarchive import rows
from tickarchive.archive.parquet_files import sort_table
from tickarchive.months import Month
from tickarchive.tables import Table


class MemoryStore:
    """Rows per table in Arrow tables, deduplicated on the table's dedup keys."""

    def __init__(self, batch_rows: int = 100_000) -> None:
        self.batch_rows = batch_rows
        self._tables: dict[str, pa.Table] = {}
        self._keys: dict[str, set[tuple[object, ...]]] = {}

    def table(self, table: Table) -> pa.Table:
        return self._tables.get(table.name, rows.arrow_schema(table).empty_table())

    def _month_rows(self, table: Table, month: Month) -> pa.Table:
        data = self.table(table)
        ts = data.column("ts").cast(pa.int64())
        mask = pc.and_(pc.greater_equal(ts, month.start_us), pc.less(ts, month.end_us))
        return data.filter(mask)

    # -- source ----------------------------------------------------------------------
    def count_rows(self, table: Table, month: Month) -> int:
        return int(self._month_rows(table, month).num_rows)

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        data = sort_table(table, self._month_rows(table, month))
        yield from data.to_batches(max_chunksize=self.batch_rows)

    def months(self, table: Table) -> list[Month]:
        data = self.table(table)
        if data.num_rows == 0:
            return []
        ts = data.column("ts").cast(pa.int64())
        lo, hi = (v.as_py() for v in pc.min_max(ts).values())
        first, last = Month.of_us(lo), Month.of_us(hi)
        out: list[Month] = []
        m = first
        while m <= last:
            if self.count_rows(table, m):
                out.append(m)
            m = m.plus(1)
        return out

    # -- sink ------------------------------------------------------------------------
    def insert(self, table: Table, batch: pa.RecordBatch | pa.Table) -> int:
        schema = rows.arrow_schema(table)
        data = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        data = data.select(schema.names).cast(schema)
        keys = self._keys.setdefault(table.name, set())
        key_cols = [data.column(k).to_pylist() for k in table.dedup_keys]
        take: list[int] = []
        for i, key in enumerate(zip(*key_cols, strict=True)):
            if key not in keys:
                keys.add(key)
                take.append(i)
        if not take:
            return 0
        new = data.take(pa.array(take, pa.int64()))
        old = self._tables.get(table.name)
        self._tables[table.name] = new if old is None else pa.concat_tables([old, new])
        return len(take)


class ArrowTableSource:
    """A read-only source over whole Arrow tables (benchmarks): sorted once, no dedup."""

    def __init__(self, tables: dict[str, pa.Table], batch_rows: int = 100_000) -> None:
        self.batch_rows = batch_rows
        self._sorted: dict[str, pa.Table] = {}
        self._tables = tables

    def _data(self, table: Table) -> pa.Table:
        if table.name not in self._sorted:
            raw = self._tables.get(table.name, rows.arrow_schema(table).empty_table())
            self._sorted[table.name] = sort_table(table, raw)
        return self._sorted[table.name]

    def _filter(self, table: Table, month: Month) -> pa.Table:
        data = self._data(table)
        ts = data.column("ts").cast(pa.int64())
        return data.filter(pc.and_(pc.greater_equal(ts, month.start_us), pc.less(ts, month.end_us)))

    def count_rows(self, table: Table, month: Month) -> int:
        return int(self._filter(table, month).num_rows)

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        yield from self._filter(table, month).to_batches(max_chunksize=self.batch_rows)

    def months(self, table: Table) -> list[Month]:
        ts = self._data(table).column("ts").cast(pa.int64())
        return sorted({Month.of_us(v) for v in pc.unique(ts).to_pylist()})


class CountingSink:
    """A sink that only counts (restore read-throughput benchmarks)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def insert(self, table: Table, batch: pa.RecordBatch) -> int:
        self.rows[table.name] = self.rows.get(table.name, 0) + int(batch.num_rows)
        return int(batch.num_rows)

    def count_rows(self, table: Table, month: Month) -> int:
        return self.rows.get(table.name, 0)
