"""The Tardis CSV forms load with the column expectations of a real loader.

The expectations below are those of nautilus_trader's Tardis CSV records
(``TardisOptionsChainRecord`` / ``TardisOrderBookSnapshot25Record``, read with serde from
the header names): ``exchange`` an exchange id (``deribit``), ``symbol`` the exchange's name (upper-cased on read),
``timestamp``/``local_timestamp``/``expiration`` unsigned integer microseconds,
``type`` ``call``|``put``, ``strike_price`` a float, every market field an optional
float (empty cell = none), ``underlying_index`` a string; rows ordered by
``local_timestamp`` (its options-chain converter refuses anything else when thinning).
Column names and order are Tardis's documented ones.
"""

from __future__ import annotations

import gzip
import io

import polars as pl
import pytest

from tests.products.synth import T0, S, quote_rows, quotes_frame
from tickarchive.products import tardis
from tickarchive.products.build import BookSpec, book_snapshots
from tickarchive.products.source import FrameSource

HEADER = (
    "exchange,symbol,timestamp,local_timestamp,type,strike_price,expiration,open_interest,last_price,bid_price,"
    "bid_amount,bid_iv,ask_price,ask_amount,ask_iv,mark_price,mark_iv,underlying_index,underlying_price,delta,gamma,"
    "vega,theta,rho"
)
OPTIONAL = ("open_interest", "last_price", "bid_price", "bid_amount", "bid_iv", "ask_price", "ask_amount", "ask_iv",
            "mark_price", "mark_iv", "underlying_price", "delta", "gamma", "vega", "theta", "rho")
LOADER_SCHEMA = {
    "exchange": pl.String, "symbol": pl.String, "timestamp": pl.UInt64, "local_timestamp": pl.UInt64,
    "type": pl.String, "strike_price": pl.Float64, "expiration": pl.UInt64,
    **{c: pl.Float64 for c in OPTIONAL[:10]}, "underlying_index": pl.String,
    **{c: pl.Float64 for c in OPTIONAL[10:]},
}


def load_like_a_loader(text: str) -> pl.DataFrame:
    assert text.splitlines()[0] == HEADER
    assert "\r" not in text
    f = pl.read_csv(io.StringIO(text), schema=LOADER_SCHEMA)  # strict: any drift fails
    assert f.get_column("exchange").unique().to_list() == ["deribit"]
    assert (f.get_column("symbol").str.len_chars() > 0).all()  # the loader upper-cases it itself
    assert set(f.get_column("type").unique()) <= {"call", "put"}
    for c in ("timestamp", "local_timestamp", "expiration", "strike_price", "symbol", "type"):
        assert f.get_column(c).null_count() == 0, c
    assert f.get_column("local_timestamp").is_sorted()
    return f


def test_options_chain_csv_reads_with_a_loaders_schema() -> None:
    rows = quote_rows(seed=1, span_s=600)
    rows[0].update(bid_price=0.0, bid_amount=0.0, bid_iv=0.0)  # Deribit: no bids
    rows[1].update(ask_price=None, ask_amount=None, ask_iv=None)
    rows[2].update(last_price=0.0)
    rows.append({**rows[3], "instrument": "ETH-PERPETUAL"})  # not an option: left out
    rows.append({**rows[3], "instrument": "XRP_USDC-30OCT26-2d4-C", "ts": T0 + 7 * S, "recv_ts": T0 + 8 * S})
    rows[4]["last_price"] = 123.5
    q = quotes_frame(rows)
    chain = tardis.options_chain(q.select(list(tardis.QUOTE_COLUMNS)))
    text = tardis.csv_bytes(chain).decode()
    f = load_like_a_loader(text)
    assert f.height == len(rows) - 1
    by = {(r["symbol"], r["timestamp"]): r for r in f.iter_rows(named=True)}
    r0 = by[(rows[0]["instrument"], rows[0]["ts"])]
    assert (r0["bid_price"], r0["bid_amount"], r0["bid_iv"]) == (None, None, None)
    assert r0["ask_price"] == rows[0]["ask_price"]
    assert r0["local_timestamp"] == rows[0]["recv_ts"]
    r1 = by[(rows[1]["instrument"], rows[1]["ts"])]
    assert r1["ask_price"] is None
    assert r1["bid_iv"] == rows[1]["bid_iv"]
    xrp = by[("XRP_USDC-30OCT26-2d4-C", T0 + 7 * S)]
    assert (xrp["strike_price"], xrp["type"], xrp["expiration"]) == (2.4, "call", 1_793_347_200 * S)
    r3 = by[(rows[3]["instrument"], rows[3]["ts"])]
    assert r3["underlying_index"] == rows[3]["underlying_index"]
    assert r3["mark_iv"] == rows[3]["mark_iv"]
    assert r3["delta"] == rows[3]["delta"]
    assert by[(rows[2]["instrument"], rows[2]["ts"])]["last_price"] is None  # Tardis: 0 means none
    assert by[(rows[4]["instrument"], rows[4]["ts"])]["last_price"] == 123.5
    assert tardis.options_chain_file_name("2026-10-05") == "deribit_options_chain_2026-10-05_OPTIONS.csv.gz"
    # gzip, as Tardis ships it
    assert gzip.decompress(gzip.compress(text.encode())).decode() == text


def test_book_snapshot_columns_follow_tardis() -> None:
    cols = tardis.book_snapshot_columns(25)
    assert len(cols) == 104
    assert cols[:8] == ("exchange", "symbol", "timestamp", "local_timestamp", "asks[0].price", "asks[0].amount",
                        "bids[0].price", "bids[0].amount")
    assert cols[-1] == "bids[24].amount"


def test_book_snapshot_csv_reads_with_a_loaders_schema() -> None:
    from tests.products.test_book import NAME, frame, messages

    rows = messages(seed=2, n=40)
    src = FrameSource(pl.DataFrame(), book_rows=frame(rows))
    snaps = pl.concat(list(book_snapshots(src, BookSpec(NAME, T0, T0 + 20 * S, 100_000, depth=25))))
    out = tardis.book_snapshots(snaps, 25)
    text = tardis.csv_bytes(out).decode()
    schema = {"exchange": pl.String, "symbol": pl.String, "timestamp": pl.UInt64, "local_timestamp": pl.UInt64}
    schema.update({c: pl.Float64 for c in tardis.book_snapshot_columns(25)[4:]})
    f = pl.read_csv(io.StringIO(text), schema=schema)
    assert list(f.columns) == list(tardis.book_snapshot_columns(25))
    assert f.height == snaps.height
    first = f.row(0, named=True)
    s0 = snaps.row(0, named=True)
    assert first["asks[0].price"] == s0["ask_0_price"]
    assert first["bids[0].amount"] == s0["bid_0_amount"]
    assert first["asks[24].price"] is None  # deeper than the book: empty
    assert first["local_timestamp"] == s0["at"]
    assert first["timestamp"] == s0["book_ts"]


@pytest.mark.parametrize("name", ["ETH-27DEC24-4000-C", "BTC-9JUN20-9875-P"])
def test_expiration_is_0800_utc(name: str) -> None:
    q = quotes_frame([{**quote_rows(seed=1, span_s=60)[0], "instrument": name}]).select(list(tardis.QUOTE_COLUMNS))
    exp = tardis.options_chain(q).get_column("expiration").item()
    assert exp % (86400 * S) == 8 * 3600 * S
    if name.startswith("BTC"):
        assert exp == 1591689600000000  # Tardis's own example row for this option
