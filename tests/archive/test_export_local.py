"""Export → verify → restore on a local directory target, and the Parquet files themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.archive.conftest import MONTH, OPTIONS
from tickarchive import rows
from tickarchive.archive import catalog, layout
from tickarchive.archive.errors import RefusedExport, RowCountMismatch, UnsortedInput
from tickarchive.archive.export import export_month
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.archive.parquet_files import sort_table
from tickarchive.archive.restore import restore_month
from tickarchive.archive.verify import verify_month
from tickarchive.months import Month
from tickarchive.tables import BOOK_CHANGES, QUOTES, TRADES, Table

TABLES = (QUOTES, TRADES, BOOK_CHANGES)


def _sorted(table: Table, data: pa.Table) -> pa.Table:
    return sort_table(table, data).combine_chunks()


def test_round_trip_gives_identical_rows(store: MemoryStore, local: LocalTarget) -> None:
    for t in TABLES:
        result = export_month(store, local, t, MONTH, OPTIONS)
        assert result.status == "exported"
        assert result.manifest.total_rows == result.manifest.source_rows == store.count_rows(t, MONTH)
        verify_month(local, t.name, MONTH)
    quotes_manifest = catalog.read_month_manifest(local, "quotes", MONTH)
    assert quotes_manifest is not None
    assert [f.path for f in quotes_manifest.files] == [
        "table=quotes/month=2026-11/part-0000.parquet",
        "table=quotes/month=2026-11/part-0001.parquet",
        "table=quotes/month=2026-11/part-0002.parquet",
    ]
    assert [f.rows for f in quotes_manifest.files] == [2000, 2000, 500]
    assert quotes_manifest.total_rows == 4500

    warm = MemoryStore()
    for t in TABLES:
        r = restore_month(local, warm, t, MONTH)
        assert r.rows_read == r.rows_inserted == store.count_rows(t, MONTH)
        assert _sorted(t, warm.table(t)).equals(_sorted(t, store.table(t)))
    # a second restore changes nothing: the dedup keys absorb it
    again = restore_month(local, warm, QUOTES, MONTH)
    assert (again.rows_read, again.rows_inserted, again.rows_in_sink) == (4500, 0, 4500)
    assert warm.table(QUOTES).num_rows == 4500


def test_parquet_files_are_sorted_zstd_with_statistics_and_metadata(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, QUOTES, MONTH, OPTIONS)
    path = local.root / "table=quotes/month=2026-11/part-0000.parquet"
    pf = pq.ParquetFile(path)
    meta = pf.metadata
    assert (meta.num_rows, meta.num_row_groups) == (2000, 2)
    rg = meta.row_group(0)
    assert rg.num_rows == 1000
    names = pf.schema_arrow.names
    assert [(names[c.column_index], c.descending) for c in rg.sorting_columns] == [
        ("instrument", False),
        ("ts", False),
    ]
    ts_col = rg.column(names.index("ts"))
    assert ts_col.compression == "ZSTD"
    assert ts_col.statistics is not None
    assert ts_col.statistics.has_min_max
    kv = pf.schema_arrow.metadata
    assert kv[b"tickarchive.schema_version"] == b"1"
    assert kv[b"tickarchive.sort_columns"] == b"instrument,ts"
    assert pf.schema_arrow.remove_metadata() == rows.arrow_schema(QUOTES).remove_metadata()
    # rows really are in (instrument, ts) order across the whole month
    lake = pl.scan_parquet(str(local.root / "table=quotes/month=2026-11/*.parquet")).collect()
    assert lake.height == 4500
    keys = list(zip(lake["instrument"].to_list(), lake["ts"].to_list(), strict=True))
    assert keys == sorted(keys)


def test_lake_reads_with_polars_and_duckdb_hive_partitioning(store: MemoryStore, local: LocalTarget) -> None:
    for t in TABLES:
        export_month(store, local, t, MONTH, OPTIONS)
    export_month(store, local, QUOTES, Month(2026, 10), OPTIONS)  # an empty month: manifest, no files
    root = local.root
    q = pl.scan_parquet(str(root / "table=quotes/**/*.parquet"), hive_partitioning=True).collect()
    assert q.height == 4500
    assert q["month"].unique().to_list() == ["2026-11"]
    assert q["table"].unique().to_list() == ["quotes"]
    expected_bid = store.table(QUOTES).column("bid_price").to_pylist()
    assert sorted(x for x in q["bid_price"].to_list() if x is not None) == sorted(
        x for x in expected_bid if x is not None
    )

    con = duckdb.connect()
    got = con.execute(
        f"""SELECT month, count(*), count(DISTINCT instrument), epoch_us(min(ts)), epoch_us(max(ts))
            FROM read_parquet('{root}/table=trades/month=*/*.parquet', hive_partitioning=true)
            GROUP BY month"""
    ).fetchall()
    trades = store.table(TRADES)
    assert got[0][0] == "2026-11"
    assert got[0][1] == trades.num_rows == 900
    assert got[0][2] == len(set(trades.column("instrument").to_pylist()))
    ts = trades.column("ts").cast(pa.int64()).to_pylist()
    assert (got[0][3], got[0][4]) == (min(ts), max(ts))
    assert MONTH.start_us <= got[0][3] < got[0][4] < MONTH.end_us
    per_table = dict(
        con.execute(
            f"SELECT \"table\", count(*) FROM read_parquet('{root}/table=*/month=*/*.parquet', "
            "hive_partitioning=true, union_by_name=true) GROUP BY ALL"
        ).fetchall()
    )
    assert per_table == {"quotes": 4500, "trades": 900, "book_changes": 1500}


def test_export_is_idempotent(store: MemoryStore, local: LocalTarget) -> None:
    first = export_month(store, local, TRADES, MONTH, OPTIONS)
    files = {p: p.stat().st_mtime_ns for p in (local.root / "table=trades").rglob("*")}
    second = export_month(store, local, TRADES, MONTH, OPTIONS)
    assert second.status == "up-to-date"
    assert second.manifest == first.manifest
    assert {p: p.stat().st_mtime_ns for p in (local.root / "table=trades").rglob("*")} == files
    index = catalog.read_index(local)
    assert [(m.table, m.month, m.rows) for m in index.months] == [("trades", "2026-11", 900)]


class _LyingSource:
    """Reports one more row than it yields (a source that changed under the export)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    def count_rows(self, table: Table, month: Month) -> int:
        return self.inner.count_rows(table, month) + 1

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        return self.inner.batches(table, month)

    def months(self, table: Table) -> list[Month]:
        return self.inner.months(table)


def test_row_count_mismatch_publishes_nothing(store: MemoryStore, local: LocalTarget) -> None:
    with pytest.raises(RowCountMismatch, match="wrote 900 rows but the source counted 901"):
        export_month(_LyingSource(store), local, TRADES, MONTH, OPTIONS)
    assert list(local.list("")) == []


class _ReversedSource(_LyingSource):
    def count_rows(self, table: Table, month: Month) -> int:
        return self.inner.count_rows(table, month)

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        batches = list(self.inner.batches(table, month))
        return iter(reversed(batches))


def test_unsorted_source_is_rejected(store: MemoryStore, local: LocalTarget) -> None:
    with pytest.raises(UnsortedInput, match="before previous row"):
        export_month(_ReversedSource(store), local, QUOTES, MONTH, OPTIONS)
    assert catalog.read_month_manifest(local, "quotes", MONTH) is None


def test_late_rows_make_a_new_generation_and_old_parts_go(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, TRADES, MONTH, OPTIONS)
    late = store.table(TRADES).slice(0, 1).to_pylist()[0]
    late["trade_id"] = "ETH-999999999"
    late["source"] = "backfill"
    store.insert(TRADES, pa.Table.from_pylist([late], schema=rows.arrow_schema(TRADES)))
    result = export_month(store, local, TRADES, MONTH, OPTIONS)
    assert (result.status, result.manifest.generation, result.manifest.total_rows) == ("exported", 1, 901)
    keys = [o.key for o in local.list("table=trades/")]
    assert keys == ["table=trades/month=2026-11/part-g1-0000.parquet"]
    verify_month(local, "trades", MONTH)
    back = MemoryStore()
    restore_month(local, back, TRADES, MONTH)
    assert back.table(TRADES).filter(pa.compute.equal(back.table(TRADES)["source"], "backfill")).num_rows == 1


def test_rows_changed_under_their_key_make_a_new_generation(store: MemoryStore, local: LocalTarget) -> None:
    """Same row count, other content (a row upserted after the export): the manifest's
    content checksum no longer matches the source, so the month is exported again."""
    first = export_month(store, local, TRADES, MONTH, OPTIONS).manifest
    assert first.content_checksum is not None
    data = store.table(TRADES)
    amount = data["amount"].to_pylist()
    amount[0] += 1.0
    changed = MemoryStore()
    changed.insert(TRADES, data.set_column(data.schema.get_field_index("amount"), "amount", pa.array(amount)))
    assert export_month(store, local, TRADES, MONTH, OPTIONS).status == "up-to-date"
    result = export_month(changed, local, TRADES, MONTH, OPTIONS)
    assert (result.status, result.manifest.generation, result.manifest.total_rows) == ("exported", 1, 900)
    assert result.manifest.content_checksum != first.content_checksum
    verify_month(local, "trades", MONTH)


def test_fewer_source_rows_than_the_archive_is_refused(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, TRADES, MONTH, OPTIONS)
    with pytest.raises(RefusedExport, match="source has 0 rows, the archive 900"):
        export_month(MemoryStore(), local, TRADES, MONTH, OPTIONS)
    manifest = catalog.read_month_manifest(local, "trades", MONTH)
    assert manifest is not None
    assert manifest.total_rows == 900


def test_no_half_written_file_is_visible(store: MemoryStore, local: LocalTarget, tmp_path: Path) -> None:
    export_month(store, local, TRADES, MONTH, OPTIONS)
    junk = local.root / "table=trades/month=2026-11/.part-0000.parquet.1a2b3c4d.tmp"
    junk.write_bytes(b"PAR1 partial")
    assert all(not o.key.endswith(".tmp") for o in local.list(""))
    # the next (forced) export cleans leftovers of crashed writes
    export_month(store, local, TRADES, MONTH, OPTIONS, force=True)
    assert not junk.exists()
    assert layout.manifest_key("trades", MONTH) in {o.key for o in local.list("_manifests/")}


def test_replay_output_source_across_months_sorted_by_index_name(tmp_path: Path, local: LocalTarget) -> None:
    from tickarchive.archive.replay_source import ParquetDirSource
    from tickarchive.tables import INDEX_TICKS

    oct_end = Month(2026, 10).end_us
    ticks = [
        {"ts": oct_end - 2_000, "recv_ts": oct_end - 1_000, "index_name": "eth_usd", "price": 3001.25},
        {"ts": oct_end + 5_000, "recv_ts": oct_end + 6_000, "index_name": "btc_usd", "price": 91234.5},
        {"ts": oct_end - 9_000, "recv_ts": oct_end - 8_000, "index_name": "btc_usd", "price": 91230.0},
        {"ts": oct_end + 1_000, "recv_ts": oct_end + 2_000, "index_name": "eth_usd", "price": 3002.75},
        {"ts": oct_end + 3_000, "recv_ts": oct_end + 4_000, "index_name": "btc_usd", "price": 91233.0},
    ]
    replay = tmp_path / "replay"
    replay.mkdir()
    pq.write_table(pa.Table.from_pylist(ticks, schema=rows.arrow_schema(INDEX_TICKS)), replay / "index_ticks.parquet")
    source = ParquetDirSource(replay)
    months = source.months(INDEX_TICKS)
    assert months == [Month(2026, 10), Month(2026, 11)]
    assert source.months(QUOTES) == []
    for m in months:
        export_month(source, local, INDEX_TICKS, m, OPTIONS)
    con = duckdb.connect()
    got = con.execute(
        f"SELECT month, index_name, price FROM read_parquet('{local.root}/table=index_ticks/month=*/*.parquet', "
        "hive_partitioning=true) ORDER BY month, index_name, ts"
    ).fetchall()
    assert got == [
        ("2026-10", "btc_usd", 91230.0),
        ("2026-10", "eth_usd", 3001.25),
        ("2026-11", "btc_usd", 91233.0),
        ("2026-11", "btc_usd", 91234.5),
        ("2026-11", "eth_usd", 3002.75),
    ]
    nov = pq.read_table(local.root / "table=index_ticks/month=2026-11/part-0000.parquet")
    assert nov.column("index_name").to_pylist() == ["btc_usd", "btc_usd", "eth_usd"]  # file order = sort order


def test_encodings_are_chosen_per_column_and_every_reader_gets_the_exact_values(
    store: MemoryStore, local: LocalTarget
) -> None:
    """Each part's encodings are measured on its first rows (delta for sorted times, plain
    for floats that change every row, dictionaries for repeating values) and are all plain
    Parquet: pyarrow, polars and DuckDB read back every value bit for bit."""
    for t in TABLES:
        export_month(store, local, t, MONTH, OPTIONS)
        path = local.root / f"table={t.name}/month=2026-11/part-0000.parquet"
        meta = pq.ParquetFile(path).metadata
        enc = {meta.schema.column(i).name: set(meta.row_group(0).column(i).encodings) for i in range(meta.num_columns)}
        assert "DELTA_BINARY_PACKED" in enc["ts"]
        assert "RLE_DICTIONARY" in enc["instrument"]
        assert all("BYTE_STREAM_SPLIT" not in e for e in enc.values())
        want = pa.Table.from_batches(list(store.batches(t, MONTH)))
        files = sorted(str(p) for p in (local.root / f"table={t.name}/month=2026-11").glob("*.parquet"))
        got_pa = pq.read_table(files).select(want.column_names)
        assert got_pa.cast(want.schema).equals(want)
        got_pl = pl.read_parquet(files).to_arrow().select(want.column_names)
        assert got_pl.cast(want.schema).equals(want)
        con = duckdb.connect()
        listed = ", ".join(f"'{f}'" for f in files)
        got_dd = con.sql(f"SELECT * FROM read_parquet([{listed}])").to_arrow_table().select(want.column_names)
        assert got_dd.cast(want.schema).equals(want)


def test_choose_encodings_measures() -> None:
    from tickarchive.archive.parquet_files import DELTA, DICT, PLAIN, choose_encodings

    n = 20_000
    rng = np.random.default_rng(1)
    sample = pa.table({
        "ts": pa.array(np.arange(n, dtype=np.int64) * 1000 + 1_790_000_000_000_000, pa.timestamp("us", tz="UTC")),
        "delta": pa.array(np.round(rng.normal(0.3, 0.2, n), 5)),
        "mark_iv": pa.array(np.round(rng.choice([55.1, 56.2, 57.3], n), 2)),
        "instrument": pa.array(["ETH-A"] * n),
    })
    got = choose_encodings(QUOTES, sample, 9)
    assert got == {"ts": DELTA, "delta": PLAIN, "mark_iv": DICT, "instrument": DICT}
