"""Tardis.dev-compatible CSV: ``options_chain`` and ``book_snapshot_{N}`` (pure).

The formats of Tardis's downloadable CSV files (docs.tardis.dev, "Downloadable CSV
files"; the field list of tardis-node's Deribit option-summary mapper and of the
loaders that read these files, e.g. nautilus_trader's Tardis CSV records): comma
separated, LF line ends, ``.`` as decimal mark, a header line, an empty cell for "no
value", timestamps as integer **microseconds** since the epoch (UTC).

``options_chain`` — one row per ticker message of an option, ordered by
``local_timestamp``; one file per exchange and UTC day, symbol ``OPTIONS``
(``deribit_options_chain_2026-10-05_OPTIONS.csv.gz``):

=================== ==========================================================================
exchange            ``deribit``
symbol              instrument name (``ETH-27DEC24-4000-C``)
timestamp           exchange time, µs (``ts``)
local_timestamp     receive time, µs (``recv_ts``)
type                ``call`` / ``put``
strike_price        strike (quote currency)
expiration          expiry, µs (08:00 UTC of the expiry date)
open_interest       contracts
last_price          last trade price; empty if 0 or none
bid_price           best bid (base currency); empty without bids (0 counts as none)
bid_amount, bid_iv  size, IV in percent; empty without bids
ask_price           best ask; empty without asks
ask_amount, ask_iv  size, IV in percent; empty without asks
mark_price, mark_iv mark price, mark IV (percent)
underlying_index    the future or synthetic (``SYN.ETH-6AUG26``) or ``index_price``
underlying_price    its price
delta … rho         the exchange's greeks
=================== ==========================================================================

``book_snapshot_{N}`` — ``exchange, symbol, timestamp, local_timestamp`` then per level
``i`` (0 = best) ``asks[i].price, asks[i].amount, bids[i].price, bids[i].amount``. Our
snapshots are taken at fixed instants (``tickarchive.products.book``): ``timestamp`` is
the exchange time of the last change applied, ``local_timestamp`` the instant (the end of
the interval, as tardis-machine's ``book_snapshot_{N}_{X}ms`` sets it).
"""

from __future__ import annotations

import polars as pl

from tickarchive.products.instruments import option_columns

EXCHANGE = "deribit"
OPTIONS_CHAIN_COLUMNS: tuple[str, ...] = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "type",
    "strike_price",
    "expiration",
    "open_interest",
    "last_price",
    "bid_price",
    "bid_amount",
    "bid_iv",
    "ask_price",
    "ask_amount",
    "ask_iv",
    "mark_price",
    "mark_iv",
    "underlying_index",
    "underlying_price",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
)
QUOTE_COLUMNS: tuple[str, ...] = (
    "ts",
    "recv_ts",
    "instrument",
    "open_interest",
    "last_price",
    "bid_price",
    "bid_amount",
    "bid_iv",
    "ask_price",
    "ask_amount",
    "ask_iv",
    "mark_price",
    "mark_iv",
    "underlying_index",
    "underlying_price",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
)
"""The ``quotes`` columns an ``options_chain`` file is made of."""


def options_chain_file_name(day: str, exchange: str = EXCHANGE) -> str:
    return f"{exchange}_options_chain_{day}_OPTIONS.csv.gz"


def options_chain(quotes: pl.DataFrame) -> pl.DataFrame:
    """``quotes`` rows (``QUOTE_COLUMNS``, times as µs) of options as Tardis
    ``options_chain`` rows in Tardis's column order, sorted by ``local_timestamp``
    (then symbol). Rows whose instrument is not an option are dropped."""
    f = option_columns(quotes).filter(pl.col("expiration").is_not_null())

    def positive(c: str) -> pl.Expr:  # Tardis: a zero price means "none"
        return pl.when(pl.col(c) > 0).then(pl.col(c))

    has_bid = pl.col("bid_price") > 0
    has_ask = pl.col("ask_price") > 0
    return f.select(
        pl.lit(EXCHANGE).alias("exchange"),
        pl.col("instrument").alias("symbol"),
        pl.col("ts").cast(pl.Int64).alias("timestamp"),
        pl.col("recv_ts").cast(pl.Int64).alias("local_timestamp"),
        pl.col("option_type").alias("type"),
        pl.col("strike").alias("strike_price"),
        pl.col("expiration"),
        pl.col("open_interest"),
        positive("last_price").alias("last_price"),
        positive("bid_price").alias("bid_price"),
        pl.when(has_bid).then(pl.col("bid_amount")).alias("bid_amount"),
        pl.when(has_bid).then(pl.col("bid_iv")).alias("bid_iv"),
        positive("ask_price").alias("ask_price"),
        pl.when(has_ask).then(pl.col("ask_amount")).alias("ask_amount"),
        pl.when(has_ask).then(pl.col("ask_iv")).alias("ask_iv"),
        pl.col("mark_price"),
        pl.col("mark_iv"),
        pl.col("underlying_index").fill_null(""),
        pl.col("underlying_price"),
        pl.col("delta"),
        pl.col("gamma"),
        pl.col("vega"),
        pl.col("theta"),
        pl.col("rho"),
    ).sort("local_timestamp", "symbol", "timestamp")


def book_snapshot_columns(depth: int) -> tuple[str, ...]:
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(depth):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return tuple(cols)


def book_snapshots(frame: pl.DataFrame, depth: int) -> pl.DataFrame:
    """Book snapshot rows (``tickarchive.products.book``) as Tardis ``book_snapshot_{depth}``."""
    levels = []
    for i in range(depth):
        levels += [
            pl.col(f"ask_{i}_price").alias(f"asks[{i}].price"),
            pl.col(f"ask_{i}_amount").alias(f"asks[{i}].amount"),
            pl.col(f"bid_{i}_price").alias(f"bids[{i}].price"),
            pl.col(f"bid_{i}_amount").alias(f"bids[{i}].amount"),
        ]
    return frame.select(
        pl.lit(EXCHANGE).alias("exchange"),
        pl.col("instrument").alias("symbol"),
        pl.col("book_ts").alias("timestamp"),
        pl.col("at").alias("local_timestamp"),
        *levels,
    )


def csv_bytes(frame: pl.DataFrame, header: bool = True) -> bytes:
    """``frame`` as Tardis CSV text: empty cells for nulls, floats as their shortest
    round-trip form."""
    return frame.write_csv(include_header=header, null_value="", float_precision=None, line_terminator="\n").encode()
