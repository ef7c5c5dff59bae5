"""OHLCV bars of any multiple of one minute from finer bars (pure).

Every tier delivers bars that tile the requested interval (warm: the ``trades_1m``
rollup folded in the database with ``date_bin``; hot: QuestDB ``SAMPLE BY 1m``; cold:
computed from the archived trades); this module folds them into the requested interval,
aligned to multiples of the interval since the epoch (UTC midnight for intervals
dividing a day). A bucket split across two tiers is merged here (input in time order).
"""

from __future__ import annotations

import polars as pl

US_PER_MIN = 60_000_000

OUT_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "trade_count", "vwap")


def fold(bars: pl.DataFrame, minutes: int) -> pl.DataFrame:
    iv = minutes * US_PER_MIN
    return (
        bars.sort("ts", maintain_order=True)
        .with_columns((pl.col("ts") // iv * iv).alias("bucket"))
        .group_by("bucket", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.col("buy_volume").sum(),
            pl.col("sell_volume").sum(),
            pl.col("trade_count").sum(),
            pl.col("pv").sum(),
        )
        .with_columns(pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).otherwise(None).alias("vwap"))
        .rename({"bucket": "ts"})
        .select(list(OUT_COLUMNS))
    )


def empty() -> pl.DataFrame:
    """No bars, with the columns and dtypes of ``fold``'s result."""
    ints = ("ts", "trade_count")
    schema: dict[str, type[pl.DataType]] = {c: pl.Int64 if c in ints else pl.Float64 for c in OUT_COLUMNS}
    return pl.DataFrame(schema=schema)
