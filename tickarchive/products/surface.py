"""Implied-volatility surfaces from the exchange's own IVs (pure).

Input: chain snapshots (``tickarchive.products.chain``). Nothing is priced here: every IV
is one Deribit published (``bid_iv``, ``ask_iv``, ``mark_iv``, in percent) and every
delta is Deribit's. Two levels:

**points** — one row per option and instant: ``at``, ``expiration``, ``tte_days``,
``strike``, ``option_type``, ``instrument``, ``forward`` (the option's
``underlying_price``: the future or synthetic it is priced off), ``log_moneyness``
= ln(strike / forward), ``bid_iv``, ``ask_iv``, ``mark_iv``, ``delta``, ``staleness_s``,
``in_gap``.

**expiries** — one row per expiry and instant (sorted by time to expiry this is the term
structure): ``forward`` (the ``underlying_price`` of the expiry's freshest quote) and its
``forward_staleness_s``; ``atm_iv``; ``call25_iv``/``put25_iv``; ``rr25`` =
call25 − put25; ``bf25`` = (call25 + put25) / 2 − atm; ``atm_total_variance`` =
(atm_iv/100)² · T (T in years of 365 days); counts, the largest staleness and how many
points are inside a gap.

Where a value lies between quoted points it is **interpolated linearly** and flagged:

* ATM: the smile is the out-of-the-money option's ``mark_iv`` per strike (the call at or
  above the forward, the put below; the other one when only one is quoted), as a
  function of log-moneyness; ``atm_iv`` is its value at 0 between the nearest strikes on
  either side (``atm_interpolated`` is false only when a strike sits exactly at the
  forward). ``atm_strike_below``/``atm_strike_above`` name the two strikes.
* 25-delta: ``mark_iv`` of the calls as a function of their delta, at 0.25, between the
  nearest quoted deltas on either side; the same for puts at −0.25
  (``wings_interpolated``).

Nothing is extrapolated: without a quoted point on each side the value is null.
"""

from __future__ import annotations

import polars as pl

from tickarchive.products.timegrid import US_PER_DAY

US_PER_YEAR = 365 * US_PER_DAY
WING_DELTA = 0.25

POINT_COLUMNS: tuple[str, ...] = (
    "at",
    "expiration",
    "tte_days",
    "strike",
    "option_type",
    "instrument",
    "forward",
    "log_moneyness",
    "bid_iv",
    "ask_iv",
    "mark_iv",
    "delta",
    "staleness_s",
    "in_gap",
)
EXPIRY_COLUMNS: tuple[str, ...] = (
    "at",
    "expiration",
    "tte_days",
    "forward",
    "forward_staleness_s",
    "atm_iv",
    "atm_interpolated",
    "atm_strike_below",
    "atm_strike_above",
    "call25_iv",
    "put25_iv",
    "rr25",
    "bf25",
    "wings_interpolated",
    "atm_total_variance",
    "options",
    "max_staleness_s",
    "points_in_gap",
)
TIME_COLUMNS: tuple[str, ...] = ("at", "expiration")
SNAPSHOT_VALUES: tuple[str, ...] = ("bid_iv", "ask_iv", "mark_iv", "delta", "underlying_price")
"""The quote columns a surface needs from the chain snapshots."""

_F64 = pl.Float64()
POINTS_SCHEMA: dict[str, pl.DataType] = {
    "at": pl.Int64(),
    "expiration": pl.Int64(),
    "tte_days": _F64,
    "strike": _F64,
    "option_type": pl.String(),
    "instrument": pl.String(),
    "forward": _F64,
    "log_moneyness": _F64,
    "bid_iv": _F64,
    "ask_iv": _F64,
    "mark_iv": _F64,
    "delta": _F64,
    "staleness_s": _F64,
    "in_gap": pl.Boolean(),
}
EXPIRIES_SCHEMA: dict[str, pl.DataType] = {
    "at": pl.Int64(),
    "expiration": pl.Int64(),
    "tte_days": _F64,
    "forward": _F64,
    "forward_staleness_s": _F64,
    "atm_iv": _F64,
    "atm_interpolated": pl.Boolean(),
    "atm_strike_below": _F64,
    "atm_strike_above": _F64,
    "call25_iv": _F64,
    "put25_iv": _F64,
    "rr25": _F64,
    "bf25": _F64,
    "wings_interpolated": pl.Boolean(),
    "atm_total_variance": _F64,
    "options": pl.UInt32(),
    "max_staleness_s": _F64,
    "points_in_gap": pl.UInt32(),
}


def points(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Per option and instant (see the module docstring)."""
    if snapshots.height == 0:
        return pl.DataFrame(schema=POINTS_SCHEMA)
    return (
        snapshots.with_columns(
            ((pl.col("expiration") - pl.col("at")) / US_PER_DAY).alias("tte_days"),
            pl.col("underlying_price").alias("forward"),
            (pl.col("strike") / pl.col("underlying_price")).log().alias("log_moneyness"),
        )
        .select(list(POINTS_SCHEMA))
        .sort("at", "expiration", "strike", "option_type")
        .cast(POINTS_SCHEMA)  # type: ignore[arg-type]
    )


def _bracket(x: str, y: str, target: float, prefix: str) -> list[pl.Expr]:
    """Aggregations: the (x, y) of the points nearest below and above ``target`` in x."""
    below = pl.col(x) <= target
    above = pl.col(x) >= target
    return [
        pl.col(x).filter(below).max().alias(f"{prefix}_x0"),
        pl.col(y).filter(below).sort_by(pl.col(x).filter(below)).last().alias(f"{prefix}_y0"),
        pl.col(x).filter(above).min().alias(f"{prefix}_x1"),
        pl.col(y).filter(above).sort_by(pl.col(x).filter(above)).first().alias(f"{prefix}_y1"),
    ]


def _interp(prefix: str, target: float) -> tuple[pl.Expr, pl.Expr]:
    """(value at ``target`` from the bracket, interpolated?) — null without both sides."""
    x0, y0, x1, y1 = (pl.col(f"{prefix}_{s}") for s in ("x0", "y0", "x1", "y1"))
    exact = x0 == x1
    value = (
        pl.when(x0.is_null() | x1.is_null() | y0.is_null() | y1.is_null())
        .then(None)
        .when(exact)
        .then(y0)
        .otherwise(y0 + (y1 - y0) * (target - x0) / (x1 - x0))
    )
    return value, pl.when(value.is_null()).then(None).otherwise(~exact)


def expiries(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Per expiry and instant (see the module docstring)."""
    if snapshots.height == 0:
        return pl.DataFrame(schema=EXPIRIES_SCHEMA)
    keys = ["at", "expiration"]
    quoted = snapshots.filter(pl.col("mark_iv").is_not_null())
    fwd = (
        snapshots.filter(pl.col("underlying_price").is_not_null())
        .sort("staleness_s", "instrument")
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("underlying_price").first().alias("forward"),
            pl.col("staleness_s").first().alias("forward_staleness_s"),
        )
    )
    smile = (
        quoted.join(fwd, on=keys, how="inner")
        .with_columns(
            (pl.col("strike") / pl.col("forward")).log().alias("k"),
            (
                ((pl.col("option_type") == "call") & (pl.col("strike") >= pl.col("forward")))
                | ((pl.col("option_type") == "put") & (pl.col("strike") < pl.col("forward")))
            ).alias("otm"),
        )
        # one IV per strike: the OTM option's, else whichever is quoted
        .sort([*keys, "strike", "otm"], descending=[False, False, False, True])
        .group_by([*keys, "strike"], maintain_order=True)
        .agg(pl.col("k").first(), pl.col("mark_iv").first())
    )
    atm = smile.group_by(keys).agg(*_bracket("k", "mark_iv", 0.0, "atm"),
                                   pl.col("strike").filter(pl.col("k") <= 0).max().alias("atm_strike_below"),
                                   pl.col("strike").filter(pl.col("k") >= 0).min().alias("atm_strike_above"))
    calls = quoted.filter((pl.col("option_type") == "call") & pl.col("delta").is_not_null())
    puts = quoted.filter((pl.col("option_type") == "put") & pl.col("delta").is_not_null())
    c25 = calls.group_by(keys).agg(*_bracket("delta", "mark_iv", WING_DELTA, "c25"))
    p25 = puts.group_by(keys).agg(*_bracket("delta", "mark_iv", -WING_DELTA, "p25"))
    stats = snapshots.group_by(keys).agg(
        pl.len().alias("options"),
        pl.col("staleness_s").max().alias("max_staleness_s"),
        pl.col("in_gap").sum().cast(pl.UInt32).alias("points_in_gap"),
    )
    atm_iv, atm_interp = _interp("atm", 0.0)
    c_iv, c_interp = _interp("c25", WING_DELTA)
    p_iv, p_interp = _interp("p25", -WING_DELTA)
    out = (
        stats.join(fwd, on=keys, how="left")
        .join(atm, on=keys, how="left")
        .join(c25, on=keys, how="left")
        .join(p25, on=keys, how="left")
        .with_columns(
            ((pl.col("expiration") - pl.col("at")) / US_PER_DAY).alias("tte_days"),
            atm_iv.alias("atm_iv"),
            atm_interp.alias("atm_interpolated"),
            c_iv.alias("call25_iv"),
            p_iv.alias("put25_iv"),
            (c_interp | p_interp).alias("wings_interpolated"),
        )
        .with_columns(
            (pl.col("call25_iv") - pl.col("put25_iv")).alias("rr25"),
            ((pl.col("call25_iv") + pl.col("put25_iv")) / 2 - pl.col("atm_iv")).alias("bf25"),
            ((pl.col("atm_iv") / 100) ** 2 * (pl.col("expiration") - pl.col("at")) / US_PER_YEAR).alias(
                "atm_total_variance"
            ),
        )
    )
    return out.select(list(EXPIRIES_SCHEMA)).sort("at", "expiration").cast(EXPIRIES_SCHEMA)  # type: ignore[arg-type]
