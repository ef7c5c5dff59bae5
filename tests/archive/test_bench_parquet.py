"""``tickarchive bench parquet`` (docs/archive.md): an archive file's bytes per row under the
archive's own options and each lossless alternative."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from tickarchive.archive import synthetic
from tickarchive.archive.parquet_files import MonthWriter
from tickarchive.bench.parquet_encodings import table_of, variants
from tickarchive.cli import app
from tickarchive.months import Month
from tickarchive.tables import QUOTES

MONTH = Month(2026, 11)


def _archive_file(tmp_path: Path) -> Path:
    data = synthetic.quotes(6000, MONTH, n_instruments=30)
    w = MonthWriter(QUOTES, MONTH, tmp_path, generation=1, zstd_level=9, row_group_rows=500_000, file_rows=10**7)
    for batch in data.sort_by([("instrument", "ascending"), ("ts", "ascending")]).to_batches():
        w.write(batch)
    (part,) = w.finish()
    return part.local_path


def test_the_first_variant_is_the_archive_file_itself(tmp_path: Path) -> None:
    path = _archive_file(tmp_path)
    assert table_of(path) == "quotes"
    data = pq.read_table(path)
    got = list(variants(QUOTES, data))
    labels = [v.label for v in got]
    assert labels[0].startswith("the archive's options (zstd 9")
    assert {"zstd 19", "BYTE_STREAM_SPLIT for every float column", "a dictionary for every column",
            "ts as TIMESTAMP(MILLIS) (every value a whole ms)", "without ts and recv_ts (their share)"} <= set(labels)
    # the rewrite with the archive's options is the file's size, up to its key-value metadata
    assert abs(got[0].bytes_per_row * data.num_rows - path.stat().st_size) < 4096
    by = {v.label: v.bytes_per_row for v in got}
    assert by["without mark_price and the greeks (their share)"] < got[0].bytes_per_row
    assert all(v.bytes_per_row > 0 and v.rows_per_s > 0 for v in got)


def test_the_command_prints_every_variant_and_refuses_other_files(tmp_path: Path) -> None:
    path = _archive_file(tmp_path)
    out = CliRunner().invoke(app, ["bench", "parquet", str(path)])
    assert out.exit_code == 0, out.output
    assert "quotes, 6,000 rows" in out.output
    assert out.output.count(" B/row ") == len(list(variants(QUOTES, pq.read_table(path))))
    other = tmp_path / "plain.parquet"
    pq.write_table(synthetic.quotes(10, MONTH, n_instruments=2), other)
    bad = CliRunner().invoke(app, ["bench", "parquet", str(other)])
    assert bad.exit_code == 2
    # rich wraps the error in a box as wide as the terminal: compare its words
    assert "is not an archive file" in " ".join(bad.output.replace("│", " ").split())


def test_simulated_trades_are_parsed_rows_spaced_as_a_day_of_them() -> None:
    from tickarchive.bench.parquet_encodings import simulated_trades
    from tickarchive.tables import TRADES

    data = simulated_trades(2000, trades_per_day=20_000)
    assert data.num_rows == 2000
    assert data.schema.names == [c.name for c in TRADES.columns]
    ts = data.column("ts").cast("int64").to_pylist()
    assert ts == sorted(ts)  # in time order, as the trades channels send them
    days = (ts[-1] - ts[0]) / 86_400_000_000
    assert 0.09 < days < 0.11  # 2,000 of 20,000 a day: a tenth of a day
    keys = set(zip(data.column("instrument").to_pylist(), data.column("trade_id").to_pylist(), strict=True))
    assert len(keys) == 2000  # every trade once
    assert set(data.column("source").to_pylist()) == {"ws"}
    assert all(p > 0 for p in data.column("price").to_pylist())


def test_the_trades_command_prints_the_variants() -> None:
    out = CliRunner().invoke(app, ["bench", "parquet-trades", "--trades", "1000"])
    assert out.exit_code == 0, out.output
    assert "1,000 simulated trades at 20,000 a day (0.1 days)" in out.output
    assert "the archive's options (zstd 9" in out.output


def test_exact_decimals_become_decimal_columns_and_the_rest_stays() -> None:
    """``as_decimals``: a column whose every value has at most Deribit's decimals becomes
    DECIMAL(18, k) holding exactly those values (each converts back to the same double);
    a column with one value of more decimals, or a -0.0, stays a double."""
    import pyarrow as pa

    from tickarchive.bench.parquet_encodings import as_decimals

    data = pa.table({
        "delta": pa.array([0.36967, -0.00012, None, 0.0, 0.5, 1.0], pa.float64()),
        "gamma": pa.array([0.00012, 0.0, -0.0, None, 0.1, 0.2], pa.float64()),  # -0.0: no decimal holds it
        "mark_price": pa.array([0.03451234, 12.5, 0.00000001, None, 3.0, 0.1], pa.float64()),
        "bid_price": pa.array([0.1, 0.123456, 0.0005, None, 2.0, 0.3], pa.float64()),  # 6 decimals: not at 4
        "instrument": pa.array(["A"] * 6),
    })
    got, exact = as_decimals(data)
    assert exact == ("mark_price", "delta")
    assert got.schema.field("delta").type == pa.decimal128(18, 5)
    assert got.schema.field("mark_price").type == pa.decimal128(18, 8)
    assert got.schema.field("bid_price").type == pa.float64()
    assert got.schema.field("gamma").type == pa.float64()
    for name in exact:
        back = [None if v is None else float(v) for v in got.column(name).to_pylist()]
        assert back == data.column(name).to_pylist()
