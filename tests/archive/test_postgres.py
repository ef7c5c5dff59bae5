"""The PostgreSQL source and sink against the real warm store, both dialects.

warm store → export → verify → truncate → restore → the same rows; a second restore
inserts nothing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tests.archive.conftest import MONTH, OPTIONS
from tickarchive.archive import synthetic
from tickarchive.archive.export import export_month
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.parquet_files import sort_table
from tickarchive.archive.restore import restore_month
from tickarchive.archive.verify import verify_month
from tickarchive.store.dialect import Dialect
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import QUOTES, TRADES, Table


def _read_back(source: WarmStore, table: Table) -> pa.Table:
    return pa.Table.from_batches(list(source.batches(table, MONTH)), schema=None).combine_chunks()


def _with_empty_string(trades: pa.Table) -> pa.Table:
    """An empty string must come back as '' and a NULL as NULL (CSV distinguishes them by quoting)."""
    col = trades.column("combo_trade_id").to_pylist()
    col[7] = ""
    col[8] = 'ETH-1,"quoted"'
    i = trades.schema.get_field_index("combo_trade_id")
    return trades.set_column(i, trades.schema.field(i), pa.array(col, pa.string()))


def test_warm_store_round_trip(warm_store: WarmHandle, tmp_path: Path) -> None:
    data = {
        QUOTES: synthetic.quotes(1500, MONTH, n_instruments=30, span_days=2.0),
        TRADES: _with_empty_string(synthetic.trades(400, MONTH, n_instruments=30, span_days=2.0)),
    }
    # COPY FROM STDIN breaks the PGlite TimescaleDB test server's connection: WarmStore.open
    # sees the PGlite server and inserts there
    with WarmStore.open(warm_store.writer_dsn) as sink:
        assert sink.copy is (warm_store.dialect is Dialect.POSTGRES)
        for table, rows in data.items():
            assert sink.insert(table, rows.to_batches()[0]) == rows.num_rows
            assert sink.insert(table, rows.to_batches()[0]) == 0  # dedup keys absorb a repeat
    source = WarmStore.open(warm_store.reader_dsn)
    cursor_source = WarmStore.open(warm_store.reader_dsn, export_batch_rows=400, export_copy=False)
    assert source.months(QUOTES) == [MONTH]
    assert len(list(source.batches(QUOTES, MONTH))) == 1  # COPY output parsed in blocks, not rows
    target = LocalTarget(tmp_path / "lake")
    for table, rows in data.items():
        assert source.count_rows(table, MONTH) == rows.num_rows
        expected = sort_table(table, rows).combine_chunks()
        assert _read_back(source, table).equals(expected)  # values, NULLs and µs timestamps exact
        assert _read_back(cursor_source, table).equals(expected)
        result = export_month(source, target, table, MONTH, OPTIONS)
        assert result.manifest.total_rows == rows.num_rows
        verify_month(target, table.name, MONTH)

    warm_store.truncate_all()
    with WarmStore.open(warm_store.writer_dsn) as sink:
        for table, rows in data.items():
            r = restore_month(target, sink, table, MONTH)
            assert (r.rows_read, r.rows_inserted, r.rows_in_sink) == (rows.num_rows,) * 3
            again = restore_month(target, sink, table, MONTH)
            assert (again.rows_inserted, again.rows_in_sink) == (0, rows.num_rows)
    for table, rows in data.items():
        assert _read_back(source, table).equals(sort_table(table, rows).combine_chunks())
    source.close()
    cursor_source.close()


def test_a_table_with_no_rows_that_month_exports_an_empty_month(postgres_clean: WarmHandle, tmp_path: Path) -> None:
    with WarmStore.open(postgres_clean.reader_dsn) as source:
        assert list(source.batches(TRADES, MONTH)) == []
        target = LocalTarget(tmp_path / "lake")
        result = export_month(source, target, TRADES, MONTH, OPTIONS)
    assert result.manifest.total_rows == 0
    assert result.manifest.files == ()
    verify_month(target, TRADES.name, MONTH)
