"""A source over replay output: ``DIR/<table>.parquet`` (``tickarchive replay ... --to DIR``).

Useful before the warm store exists and for re-archiving from raw frames. Each month
is filtered and sorted in memory, so it suits modest volumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from tickarchive import rows
from tickarchive.archive.errors import SourceError
from tickarchive.archive.parquet_files import sort_table
from tickarchive.months import Month
from tickarchive.tables import Table


class ParquetDirSource:
    def __init__(self, directory: Path, batch_rows: int = 100_000) -> None:
        self.directory = directory
        self.batch_rows = batch_rows

    def _dataset(self, table: Table) -> ds.Dataset | None:
        path = self.directory / f"{table.name}.parquet"
        if not path.exists():
            return None
        try:
            return ds.dataset(str(path), format="parquet")
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path}: {exc}") from None

    def _month(self, table: Table, month: Month) -> pa.Table:
        dataset = self._dataset(table)
        schema = rows.arrow_schema(table)
        if dataset is None:
            return schema.empty_table()
        ts = pc.field("ts").cast(pa.int64())
        try:
            data = dataset.to_table(filter=(ts >= month.start_us) & (ts < month.end_us))
            return data.select(schema.names).cast(schema)
        except (pa.ArrowException, KeyError) as exc:
            raise SourceError(f"{self.directory}/{table.name}.parquet: {exc}") from None

    def count_rows(self, table: Table, month: Month) -> int:
        return int(self._month(table, month).num_rows)

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        yield from sort_table(table, self._month(table, month)).to_batches(max_chunksize=self.batch_rows)

    def months(self, table: Table) -> list[Month]:
        dataset = self._dataset(table)
        if dataset is None:
            return []
        try:
            ts = dataset.to_table(columns=["ts"]).column("ts").cast(pa.int64())
        except (pa.ArrowException, KeyError) as exc:
            raise SourceError(f"{self.directory}/{table.name}.parquet: {exc}") from None
        if len(ts) == 0:
            return []
        month_starts = {
            Month.of_us(v)
            for v in pc.unique(pc.floor_temporal(ts.cast(pa.timestamp("us", "UTC")), unit="month"))
            .cast(pa.int64())
            .to_pylist()
        }
        return sorted(month_starts)
