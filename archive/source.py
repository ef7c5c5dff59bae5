"""The two interfaces the archive is built around.

* ``ArchiveSource`` yields the rows of one (table, month) as Arrow record batches with the
  schema ``tickarchive.rows.arrow_schema(table)``, **ordered by (table.segment_by, ts)**
  (string order = byte order, i.e. ``COLLATE "C"`` in PostgreSQL). The warm store
  implements it; ``archive.memory.MemoryStore`` and ``archive.replay_source`` do for tests
  and for replay output.
* ``ArchiveSink`` takes batches back on restore and must ignore rows whose dedup key
  (``table.dedup_keys``) it already holds, so a restore can run any number of times.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa

from tickarchive.months import Month
from tickarchive.tables import Table


class ArchiveSource(Protocol):
    def count_rows(self, table: Table, month: Month) -> int:
        """Rows of ``table`` with ``month.start_us <= ts < month.end_us``."""
        ...

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        """Those rows, ordered by (segment_by, ts)."""
        ...

    def months(self, table: Table) -> list[Month]:
        """Months in which ``table`` has rows, ascending."""
        ...


class ArchiveSink(Protocol):
    def insert(self, table: Table, batch: pa.RecordBatch) -> int:
        """Insert rows not already present (by dedup key); returns how many were new."""
        ...

    def count_rows(self, table: Table, month: Month) -> int: ...
