"""Deribit option names as columns (pure): expiry, strike and type from the name.

Names are ``{CURRENCY}-{DMMMYY}-{STRIKE}-{C|P}``; the strike may use ``d`` as the decimal
point (``XRP_USDC-30JUN25-2d4-C``). Options expire at 08:00 UTC on their expiry date
(Deribit's rule, also Tardis's ``expiration``).
"""

from __future__ import annotations

import polars as pl

EXPIRY_HOUR_UTC = 8
OPTION_PATTERN = r"^([A-Z0-9_]+)-(\d{1,2})([A-Z]{3})(\d{2})-([0-9d]+)-([CP])$"


def chain_regex(currency: str) -> str:
    """Anchored regex of the option names of ``currency`` (no futures or perpetuals)."""
    return f"^{currency}-[0-9]+[A-Z]+[0-9]+-[0-9d]+-[CP]$"


def option_columns(frame: pl.DataFrame, column: str = "instrument") -> pl.DataFrame:
    """``frame`` with ``expiration`` (µs, 08:00 UTC of the expiry date), ``strike`` and
    ``option_type`` (``call``/``put``) from the names in ``column``; null for names that
    are not option names."""
    parts = pl.col(column).str.extract_groups(OPTION_PATTERN)
    date = pl.concat_str(parts.struct.field("2").str.zfill(2), parts.struct.field("3"), parts.struct.field("4"))
    # non-strict: a name with an impossible date (31FEB25) is not an option name
    expiry = date.str.strptime(pl.Date, "%d%b%y", strict=False).cast(pl.Datetime("us", "UTC")) + pl.duration(
        hours=EXPIRY_HOUR_UTC
    )
    exp_us = expiry.dt.epoch("us")
    valid = exp_us.is_not_null()
    return frame.with_columns(
        exp_us.alias("expiration"),
        pl.when(valid)
        .then(parts.struct.field("5").str.replace("d", ".", literal=True).cast(pl.Float64))
        .alias("strike"),
        pl.when(valid & (parts.struct.field("6") == "C"))
        .then(pl.lit("call"))
        .when(valid & (parts.struct.field("6") == "P"))
        .then(pl.lit("put"))
        .otherwise(None)
        .alias("option_type"),
    )
