"""Day conditions: pending until sealed, missing without rows, degraded with the union of
the gap seconds and the share of instruments touched, available otherwise."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tickarchive.products.condition import classify

S = 1_000_000
D = [dt.date(2026, 10, 5) + dt.timedelta(days=i) for i in range(5)]


def us(day: dt.date, h: float = 0) -> int:
    return ((day - dt.date(1970, 1, 1)).days * 86400 + int(h * 3600)) * S


ROWS = pl.DataFrame(
    {
        "day": [D[0], D[0], D[1], D[1], D[1], D[1], D[3], D[4]],
        "instrument": ["A", "B", "A", "B", "C", "D", "A", "A"],
        "rows": [10, 20, 5, 5, 5, 5, 7, 9],
    }
)
GAPS = pl.DataFrame(
    {
        "ts": [us(D[1], 1), us(D[1], 1.5), us(D[1], 10), us(D[3], 23), us(D[1], 3), us(D[0], 2)],
        "end_ts": [us(D[1], 2), us(D[1], 2.5), us(D[1], 11), None, us(D[1], 4), us(D[0], 3)],
        "instrument": ["A", "B", "A", "*", "C", "A"],
        "kind": ["stale", "disconnect", "book_seq", "downtime", "trade_seq", "trade_seq"],
        "status": ["resolved", "resolved", "resolved", "open", "backfilled", "unrecoverable"],
    }
)


def by_day(table: str, now: int) -> dict[dt.date, dict[str, object]]:
    f = classify(table, D, set(D[:4]), ROWS, GAPS, now)
    return {r["day"]: r for r in f.iter_rows(named=True)}


def test_quotes() -> None:
    out = by_day("quotes", now=us(D[4], 6))
    assert out[D[0]]["condition"] == "available"  # the trade_seq gap does not concern quotes
    d1 = out[D[1]]
    assert d1["condition"] == "degraded"
    assert d1["gap_seconds"] == pytest.approx(1.5 * 3600)  # [1, 2.5) h: union of A's and B's gaps
    assert (d1["instruments"], d1["instruments_affected"], d1["affected_share"]) == (4, 2, 0.5)
    assert d1["rows"] == 20
    assert d1["gaps"] == 2
    assert out[D[2]]["condition"] == "missing"
    d3 = out[D[3]]  # a whole-connection gap still open: everyone, until midnight
    assert d3["condition"] == "degraded"
    assert d3["affected_share"] == 1.0
    assert d3["gap_seconds"] == pytest.approx(3600)
    assert out[D[4]]["condition"] == "pending"


def test_book_and_trades_have_their_own_gaps() -> None:
    book = by_day("book_changes", now=us(D[4]))
    assert book[D[1]]["gap_seconds"] == pytest.approx(2.5 * 3600)  # + A's book_seq hour
    trades = by_day("trades", now=us(D[4]))
    assert trades[D[0]]["condition"] == "degraded"  # unrecoverable trade_seq gap
    assert trades[D[1]]["instruments_affected"] == 2  # C's trades were backfilled: not a gap
    assert trades[D[3]]["gap_seconds"] == pytest.approx(3600)


def test_open_gaps_count_up_to_now() -> None:
    out = by_day("quotes", now=us(D[3], 23.25))
    assert out[D[3]]["gap_seconds"] == pytest.approx(900)
