"""The pure core of the quality report, without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from tickarchive.ops.quality.errors import DayError
from tickarchive.ops.quality.model import GapRow, QuoteRow, TradeRow
from tickarchive.ops.quality.report import parse_day
from tickarchive.ops.quality.scan import (
    MAX_EXAMPLES,
    OrderError,
    QuoteScanner,
    TradeScanner,
    clip_gaps,
    reconcile_volume,
)

S = 1_000_000
T0 = 1_795_132_800 * S  # 2026-11-20T00:00:00Z


def _desc(rows: list[QuoteRow]) -> list[QuoteRow]:
    return sorted(rows, key=lambda q: q.ts_us, reverse=True)


def test_one_late_quote_is_one_flag_not_a_cascade() -> None:
    # in receive order: ts 10, 20, 15 (late), 30, 40, and 12 received long after everything
    scan = QuoteScanner(T0)
    rows = [(10, 10), (20, 20), (15, 21), (30, 30), (40, 40), (12, 90)]
    scan.feed(_desc([QuoteRow(T0 + ts * S, T0 + recv * S, "X", 1.0, 1.0, 2.0, 1.0, None) for ts, recv in rows]))
    assert scan.backwards.count == 2
    flagged = sorted((f.ts_us - T0) // S for f in scan.backwards.examples)
    assert flagged == [12, 15]
    details = {(f.ts_us - T0) // S: f.detail for f in scan.backwards.examples}
    assert details[15] == "ts 5000.000 ms before a quote received earlier"


def test_equal_ts_is_not_backwards_and_instruments_are_independent() -> None:
    scan = TradeScanner()
    rows = [
        TradeRow(T0 + 5 * S, T0 + 9 * S, "X", "a", 1, 0.1, 1.0),
        TradeRow(T0 + 5 * S, T0 + 6 * S, "X", "b", 2, 0.1, 1.0),  # same ts, received earlier: fine
        TradeRow(T0 + 4 * S, T0 + 7 * S, "Y", "c", 1, 0.1, 1.0),  # other instrument: fine
        TradeRow(T0 + 3 * S, T0 + 8 * S, "X", "d", 0, 0.1, 1.0),  # received after b (ts 5): flagged
    ]
    scan.feed(rows)
    assert [f.detail for f in scan.backwards.examples] == ["trade d: ts 2000.000 ms before a trade received earlier"]


def test_rows_out_of_order_are_a_caller_bug() -> None:
    scan = QuoteScanner(T0)
    scan.add(QuoteRow(T0 + S, T0 + S, "X", None, None, None, None, None))
    with pytest.raises(OrderError, match="descending ts order"):
        scan.add(QuoteRow(T0 + 2 * S, T0 + 2 * S, "X", None, None, None, None, None))


def test_examples_are_capped_and_counts_exact() -> None:
    scan = QuoteScanner(T0)
    for i in reversed(range(MAX_EXAMPLES + 25)):
        scan.add(QuoteRow(T0 + i * S, T0 + i * S, "X", 3.0, 1.0, 2.0, 1.0, None))
    assert scan.crossed.count == MAX_EXAMPLES + 25
    assert len(scan.crossed.result().examples) == MAX_EXAMPLES


def test_empty_sides_are_not_flagged_but_zero_prices_are() -> None:
    scan = QuoteScanner(T0)
    scan.add(QuoteRow(T0 + 2 * S, T0 + 2 * S, "X", None, None, None, None, None))
    scan.add(QuoteRow(T0 + S, T0 + S, "X", None, None, 0.0005, 3.0, None))
    assert [c.count for c in scan.checks()] == [0, 0, 0, 0]
    scan.add(QuoteRow(T0, T0, "X", -0.1, 1.0, 0.0005, 0.0, None))
    assert scan.nonpositive.count == 1
    assert scan.nonpositive.examples[0].detail == "bid_price -0.1, ask_amount 0.0"


def test_hours_clamp_to_the_day() -> None:
    scan = QuoteScanner(T0)
    scan.add(QuoteRow(T0 + 24 * 3600 * S - 1, T0, "X", None, None, None, None, None))
    assert scan.coverage().counts == ((0,) * 23 + (1,),)


def test_trade_completeness_and_duplicates() -> None:
    scan = TradeScanner()
    rows = [(5, "a", 1.0, 5), (6, "b", 2.0, 6), (9, "c", 4.0, 9), (6, "b", 2.0, 20)]  # b re-delivered at t=20
    for seq, tid, amount, recv in sorted(rows, reverse=True):
        scan.add(TradeRow(T0 + seq * S, T0 + recv * S, "X", tid, seq, 0.1, amount))
    (comp,) = scan.completeness()
    assert (comp.trades, comp.distinct_seq, comp.expected, comp.missing) == (4, 3, 5, 2)
    assert comp.pct == pytest.approx(60.0)
    assert scan.duplicates.count == 1
    assert scan.duplicates.examples[0].recv_us == T0 + 20 * S  # the later-received copy is the repeat
    assert scan.traded() == {"X": 7.0}  # the repeat is not summed twice


def test_volume_reconciliation_statuses() -> None:
    day = 86_400 * S
    last = {"A": (T0, 10.4), "B": (T0, 10.0), "D": (T0, 2.0), "E": (T0, 0.0)}
    window = {"A": 10.0, "B": 9.0}
    hour = 3600 * S
    every_hour = set(range((T0 - day) // hour, T0 // hour + 1))
    rows = reconcile_volume(window, {"A": 10.0, "B": 9.0, "C": 1.0}, last, 5.0, every_hour)
    assert [(v.instrument, v.status) for v in rows] == [
        ("A", "ok"), ("B", "mismatch"), ("C", "no_stats"), ("D", "mismatch")
    ]
    assert rows[1].diff_pct == pytest.approx(-10.0)
    # the window touches an hour not collected (collection began later, or stopped meanwhile):
    # not compared, and said so
    for missing in (min(every_hour), (T0 - 5 * hour) // hour):
        late = reconcile_volume(window, {"A": 10.0}, last, 5.0, every_hour - {missing})
        assert {v.instrument: v.status for v in late} == {"A": "partial_window", "B": "partial_window",
                                                           "D": "partial_window"}
    assert {v.status for v in reconcile_volume(window, {}, last, 5.0, set())} == {"partial_window"}


def test_volume_window_is_like_with_like() -> None:
    from tickarchive.ops.quality.model import WindowTrade
    from tickarchive.ops.quality.scan import window_traded

    day = 86_400 * S
    t = T0 + 20 * 3600 * S  # the last quote of the day at 20:00: its window is (20:00 the day before, 20:00]
    day_trades = [
        TradeRow(T0 + S, T0 + S, "X", "a", 1, 0.1, 1.0),
        TradeRow(t, t, "X", "b", 2, 0.1, 2.0),  # at t: in
        TradeRow(t + S, t + S, "X", "c", 3, 0.1, 4.0),  # after t: out
        TradeRow(T0 + S, T0 + S, "Y", "y", 1, 0.1, 8.0),  # no stats for Y
    ]
    earlier = [
        WindowTrade(t - day, "X", "d", 16.0),  # exactly 24 h before t: out
        WindowTrade(t - day + S, "X", "e", 32.0),  # in
        WindowTrade(t - day + S, "X", "a", 1.0),  # a repeat of a trade id: counted once
    ]
    assert window_traded(day_trades, earlier, {"X": (t, 0.0)}) == {"X": 1.0 + 2.0 + 32.0}


def test_backfilled_trades_are_not_late() -> None:
    scan = TradeScanner()
    rows = [
        TradeRow(T0 + 9 * S, T0 + 9 * S, "X", "c", 3, 0.1, 1.0),
        TradeRow(T0 + 5 * S, T0 + 99 * S, "X", "b", 2, 0.1, 1.0, "backfill"),  # fetched after the gap
        TradeRow(T0 + 1 * S, T0 + 1 * S, "X", "a", 1, 0.1, 1.0),
    ]
    scan.feed(rows)
    assert scan.backwards.count == 0
    assert scan.backfilled == 1
    assert scan.completeness()[0].missing == 0
    assert scan.traded() == {"X": 3.0}
    late_live = TradeScanner()
    late_live.feed([rows[0], rows[1]._replace(source="ws"), rows[2]])
    assert late_live.backwards.count == 1


def test_gap_clipping() -> None:
    day_end = T0 + 86_400 * S
    gaps = [
        GapRow(T0 - 10 * S, T0 + 5 * S, "*", "disconnect", "x", "c0", "resolved"),
        GapRow(T0 + 100 * S, None, "I", "stale", "x", "c0", "open"),
        GapRow(day_end, day_end + S, "I", "stale", "x", "c0", "resolved"),
        GapRow(T0 - 20 * S, T0 - 10 * S, "I", "stale", "x", "c0", "resolved"),
    ]
    spans = clip_gaps(gaps, T0, day_end, now_us=T0 + 160 * S)
    assert [(s.seconds, s.open) for s in spans] == [(5.0, False), (60.0, True)]


def test_parse_day() -> None:
    today = dt.date(2026, 3, 1)
    assert parse_day("yesterday", today) == dt.date(2026, 2, 28)
    assert parse_day("today", today) == today
    assert parse_day("2026-11-20") == dt.date(2026, 11, 20)
    with pytest.raises(DayError, match="expected YYYY-MM-DD"):
        parse_day("20261120x")


def test_an_unreachable_warm_store_is_a_clear_error(dead_port: int) -> None:
    from tickarchive.ops.quality.errors import QualitySourceError
    from tickarchive.ops.quality.source import choose_source
    from tickarchive.settings import PostgresSettings, Settings

    port = dead_port
    settings = Settings(postgres=PostgresSettings(dsn=f"postgresql://u:p@127.0.0.1:{port}/tickarchive"))
    with pytest.raises(QualitySourceError, match=rf"warm \(127.0.0.1:{port}/tickarchive\): cannot connect"):
        choose_source(settings, dt.date(2026, 11, 20), "auto")
    assert choose_source(settings, dt.date(2026, 11, 20), "hot").tier == "hot"  # no warm lookup at all


def test_an_instrument_cannot_be_missing_outside_its_listing() -> None:
    from tickarchive.ops.quality.model import Coverage, listed_hours

    hour = 3600 * S
    # a daily option expiring at 08:00, its successor listed then, and one listed all day
    expiring = listed_hours(T0, (None, T0 + 8 * hour))
    successor = listed_hours(T0, (T0 + 8 * hour, None))
    assert expiring == tuple(h < 8 for h in range(24))
    assert successor == tuple(h >= 8 for h in range(24))
    # settled 2 s after 08:00, listed 2 s after: hour 8 is not a whole hour of either
    late_expiry = listed_hours(T0, (None, T0 + 8 * hour + 2 * S))
    late_listing = listed_hours(T0, (T0 + 8 * hour + 2 * S, None))
    assert (late_expiry[7], late_expiry[8], late_listing[8], late_listing[9]) == (True, False, False, True)
    assert listed_hours(T0, None) == (True,) * 24
    cov = Coverage(
        ("ETH-5DEC26-3000-C", "ETH-9DEC26-3000-C", "ETH-9DEC26-3200-C", "ETH-PERPETUAL"),
        (tuple(1 if h < 8 else 0 for h in range(24)), tuple(0 if h < 8 else 1 for h in range(24)),
         tuple(0 if h < 9 else 1 for h in range(24)), (1,) * 24),
        (True,) * 24,
        (late_expiry, late_listing, late_listing, (True,) * 24),
    )
    assert cov.cells_with_data_pct == 100.0  # not one quote missing while listed
    assert cov.silent() == []
    groups = {g.group: g for g in cov.groups()}
    assert groups["ETH-5DEC26"].live(8) == 0  # expired: the heatmap draws it "not listed", not red
    # the listing hour: the one quoted counts, the one not yet quoted is not due
    assert (groups["ETH-9DEC26"].live(8), groups["ETH-9DEC26"].pct(8)) == (1, 100.0)
    assert groups["ETH-9DEC26"].pct(12) == 100.0
