"""Marking product points that fall inside a known gap (pure).

A gap (table ``gaps``) is a window ``[ts, end_ts)`` in which data of one instrument, or
of everything (``instrument = '*'``), may be missing; an open gap (``end_ts`` NULL) lasts
until now. A product point says "the last quote (or book change) known at instant ``at``
was the one at ``ts``"; that is only certain if nothing could have been missed between
the two, so a point is *in a gap* when a relevant gap overlaps ``[ts, at]``: it started
at or before ``at`` and had not ended by ``ts``.

Which gaps are relevant depends on the data: every kind that loses ticker or book
messages (disconnects, collector downtime, stale feeds, refused subscriptions) for
quotes; those plus ``book_seq`` (a change id was skipped: the book is wrong until the next
snapshot) for books; ``trade_seq`` and the message-losing kinds for trades, except gaps
whose trades were ``backfilled`` from the history API.
"""

from __future__ import annotations

import polars as pl

ALL = "*"
OPEN_END_US = 2**62
"""Stand-in end of an open gap."""

QUOTE_KINDS = ("disconnect", "downtime", "stale", "rejected")
BOOK_KINDS = (*QUOTE_KINDS, "book_seq")
TRADE_KINDS = (*QUOTE_KINDS, "trade_seq")

GAPS_SCHEMA = {
    "ts": pl.Int64,
    "end_ts": pl.Int64,
    "instrument": pl.String,
    "kind": pl.String,
    "status": pl.String,
}


def relevant(gaps: pl.DataFrame, kinds: tuple[str, ...], *, trades: bool = False) -> pl.DataFrame:
    """The gaps of ``kinds`` as ``g_lo``, ``g_hi`` (open gaps end at ``OPEN_END_US``),
    ``instrument``; for trades without those that were backfilled."""
    if gaps.height == 0:
        return pl.DataFrame(schema={"g_lo": pl.Int64, "g_hi": pl.Int64, "instrument": pl.String})
    keep = pl.col("kind").is_in(list(kinds))
    if trades:
        keep = keep & (pl.col("status") != "backfilled")
    return gaps.filter(keep).select(
        pl.col("ts").cast(pl.Int64).alias("g_lo"),
        pl.col("end_ts").cast(pl.Int64).fill_null(OPEN_END_US).alias("g_hi"),
        pl.col("instrument"),
    )


def mark(frame: pl.DataFrame, lo: str, hi: str, gaps: pl.DataFrame, instrument: str = "instrument") -> pl.Series:
    """Per row of ``frame``: does a gap of ``gaps`` (from ``relevant``) for the row's
    instrument or for ``*`` overlap ``[frame[lo], frame[hi]]``? Rows with a null ``lo``
    are checked at ``hi`` alone."""
    n = frame.height
    if n == 0 or gaps.height == 0:
        return pl.Series("in_gap", [False] * n, dtype=pl.Boolean)
    lo_expr = pl.coalesce(pl.col(lo), pl.col(hi))
    star = gaps.filter(pl.col("instrument") == ALL)
    hit = pl.lit(False)
    for g_lo, g_hi in star.select("g_lo", "g_hi").unique().iter_rows():
        hit = hit | ((pl.col(hi) >= g_lo) & (lo_expr < g_hi))
    marked = frame.select(hit.alias("in_gap")).to_series()
    own = gaps.filter(pl.col("instrument") != ALL)
    if own.height:
        indexed = frame.select(pl.int_range(pl.len()).alias("_row"), pl.col(instrument), lo_expr.alias("_lo"),
                               pl.col(hi).alias("_hi"))
        rows = (
            indexed.join(own, left_on=instrument, right_on="instrument", how="inner")
            .filter((pl.col("_hi") >= pl.col("g_lo")) & (pl.col("_lo") < pl.col("g_hi")))
            .get_column("_row")
            .unique()
        )
        if rows.len():
            flags = pl.Series("in_gap", [False] * n, dtype=pl.Boolean).scatter(rows, True)
            marked = marked | flags
    return marked.alias("in_gap")
