"""``tickarchive export``: the products as Parquet, CSV and Tardis files, equal to what the
API answers for the same request (both read the same stored ticks)."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from tests.api import data
from tests.api.conftest import Api
from tests.products.test_tardis import load_like_a_loader
from tickarchive.api.timefmt import iso
from tickarchive.cli.export import register
from tickarchive.products import tardis
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

D1, D2, D3 = data.DAYS
START, END = iso(data.us(D1, 6)), iso(data.us(D2, 6))


@pytest.fixture
def cli(
    api: Api, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[typer.Typer, CliRunner, Api]:
    data.write(questdb_clean, data.all_events())
    for key, value in {
        "QUESTDB__HOST": questdb_clean.host,
        "QUESTDB__PG_PORT": str(questdb_clean.pg_port),
        "QUESTDB__HTTP_PORT": str(questdb_clean.http_port),
        "POSTGRES__DSN": postgres_clean.owner_dsn,
        "POSTGRES__READER_DSN": postgres_clean.reader_dsn,
        "ARCHIVE__TARGET": str(tmp_path / "lake"),
        "ARCHIVE__CACHE_DIR": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(f"TICKARCHIVE_{key}", value)
    app = typer.Typer()
    register(app)
    return app, CliRunner(), api


def test_chain_surface_and_book_files_equal_the_api(cli: tuple[typer.Typer, CliRunner, Api], tmp_path: Path) -> None:
    app, runner, api = cli
    chain_pq = tmp_path / "out" / "chain.parquet"
    args = ["export", "chain", "--currency", "ETH", "--start", START, "--end", END, "--interval", "1h",
            "--max-age-s", "21600"]
    r = runner.invoke(app, [*args, "--out", str(chain_pq)])
    assert r.exit_code == 0, r.output
    table = pq.read_table(chain_pq)
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
    got = pl.from_arrow(table)
    assert isinstance(got, pl.DataFrame)
    body = api.get("/chain/snapshots", currency="ETH", start=START, end=END, interval="1h", max_age_s=21600,
                   time_format="epoch_us")
    assert got.height == body["count"] > 0
    as_us = got.with_columns(pl.col(c).dt.epoch("us") for c in ("at", "ts", "recv_ts", "expiration"))
    assert as_us.to_dicts() == body["rows"]
    assert f"{got.height:,} chain snapshot rows" in r.output

    chain_csv = tmp_path / "out" / "chain.csv"
    r = runner.invoke(app, [*args, "--out", str(chain_csv), "--columns", "bid_price,mark_iv"])
    assert r.exit_code == 0, r.output
    text = chain_csv.read_text()
    assert text.splitlines()[0] == "at,instrument,expiration,strike,option_type,ts,recv_ts,staleness_s,in_gap," \
                                   "bid_price,mark_iv"
    assert len(text.splitlines()) == got.height + 1
    assert text.splitlines()[1].startswith(iso(data.us(D1, 6)))

    surf = tmp_path / "out" / "surface.parquet"
    r = runner.invoke(app, ["export", "surface", "--currency", "ETH", "--start", START, "--end", END,
                            "--interval", "6h", "--max-age-s", "86400", "--out", str(surf)])
    assert r.exit_code == 0, r.output
    want_s = api.get("/surface", currency="ETH", start=START, end=END, interval="6h", max_age_s=86400)
    assert pq.read_table(surf).num_rows == want_s["count"] > 0

    book = tmp_path / "out" / "book.csv"
    r = runner.invoke(app, ["export", "book", "--instrument", data.BOOK_INSTRUMENT, "--start", START, "--end", END,
                            "--interval", "30m", "--depth", "25", "--tardis", "--out", str(book)])
    assert r.exit_code == 0, r.output
    lines = book.read_text().splitlines()
    assert lines[0] == ",".join(tardis.book_snapshot_columns(25))
    want_b = api.get("/book/snapshots", instrument=data.BOOK_INSTRUMENT, start=START, end=END, interval="30m",
                     depth=25, time_format="epoch_us")["rows"]
    assert len(lines) == len(want_b) + 1
    first = lines[1].split(",")
    assert (first[0], first[1], int(first[3])) == ("deribit", data.BOOK_INSTRUMENT, want_b[0]["at"])
    assert float(first[6]) == want_b[0]["bid_0_price"]


def test_options_chain_day_files(cli: tuple[typer.Typer, CliRunner, Api], tmp_path: Path) -> None:
    app, runner, _ = cli
    out = tmp_path / "tardis"
    r = runner.invoke(app, ["export", "options-chain", "--currency", "ETH", "--day", "2026-10-05", "--days", "2",
                            "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    quotes = data.quotes()
    for d in (D1, D2):
        path = out / f"deribit_options_chain_{d.isoformat()}_OPTIONS.csv.gz"
        f = load_like_a_loader(gzip.decompress(path.read_bytes()).decode())
        want = sorted((q for q in quotes if q.instrument.startswith("ETH-") and data.us(d) <= q.ts_us
                       < data.us(d) + 86_400_000_000), key=lambda q: (q.recv_ts_us, q.instrument))
        assert f.get_column("local_timestamp").to_list() == [q.recv_ts_us for q in want]
        assert f.get_column("bid_price").to_list() == [q.bid_price for q in want]
    bad = runner.invoke(app, ["export", "chain", "--currency", "ETH", "--start", START, "--end", END,
                              "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0
    assert "name a .parquet or .csv file" in str(bad.exception)
