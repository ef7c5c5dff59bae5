"""/chain, /book, /ohlcv, /instruments, /gaps, /coverage against values computed
independently from the known inputs (tests/api/data.py), on QuestDB + plain PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.api import data
from tests.api.conftest import Api
from tickarchive.api.timefmt import iso
from tickarchive.domain import Event, Gap, GapKind, GapStatus, InstrumentEvent
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.venues.deribit.discovery import shard_of

D1, D2, D3 = data.DAYS


@pytest.fixture
def loaded(api_pg: Api, questdb_clean: QuestDBHandle) -> Api:
    data.write(questdb_clean, data.all_events())
    return api_pg


@pytest.mark.parametrize(
    ("at", "lookback_s"),
    [
        (data.us(D1, 13, 0), 86_400),
        (data.us(D2, 7, 59, 59.0), 3600),  # ETH-6OCT26 still live
        (data.us(D2, 8, 0, 0.0), 86_400),  # ... and expired at 08:00
        (data.us(D3, 23, 59, 59.0), 600),
    ],
)
def test_chain_is_the_last_quote_of_each_live_option(loaded: Api, at: int, lookback_s: int) -> None:
    want = data.expected_chain(data.quotes(), "ETH", at, lookback_s * 1_000_000)
    body = loaded.get("/chain", currency="ETH", at=iso(at), lookback_s=lookback_s, time_format="epoch_us")
    got = {r["instrument"]: r for r in body["rows"]}
    assert sorted(got) == sorted(want)
    for name, q in want.items():
        r = got[name]
        assert (r["ts"], r["bid_price"], r["ask_price"], r["mark_iv"], r["open_interest"]) == (
            q.ts_us,
            q.bid_price,
            q.ask_price,
            q.mark_iv,
            q.open_interest,
        )
    assert body["currency"] == "ETH"
    assert body["count"] == len(want)


@pytest.mark.parametrize("at", [data.us(D1, 0, 0, 1.0), data.us(D1, 5, 0), data.us(D2, 9, 35), data.us(D3, 23, 0)])
def test_book_matches_the_changes_applied_to_the_snapshot(loaded: Api, at: int) -> None:
    bids, asks = data.expected_book(data.book(), at)
    body = loaded.get("/book", instrument=data.BOOK_INSTRUMENT, at=iso(at), depth=100)
    assert body["bids"] == bids
    assert body["asks"] == asks
    assert body["sequence_breaks"] == 0
    top = loaded.get("/book", instrument=data.BOOK_INSTRUMENT, at=iso(at), depth=1)
    assert top["bids"] == bids[:1]
    assert top["asks"] == asks[:1]


def test_book_without_snapshot_is_404(loaded: Api) -> None:
    r = loaded.client.get("/book", params={"instrument": data.BOOK_INSTRUMENT, "at": "2026-10-04T12:00:00Z"})
    assert r.status_code == 404
    assert "no book snapshot" in r.json()["detail"]


def test_ohlcv_hot_matches_trades(loaded: Api) -> None:
    inst = "ETH-30OCT26-3000-P"
    trades = [t for t in data.trades() if t.instrument == inst and data.us(D2) <= t.ts_us < data.us(D3)]
    body = loaded.get("/ohlcv", instrument=inst, start=D2.isoformat(), end=D3.isoformat(), interval="1d")
    (bar,) = body["rows"]
    trades.sort(key=lambda t: t.ts_us)
    assert bar["ts"] == "2026-10-06T00:00:00.000000Z"
    assert bar["instrument"] == inst
    assert (bar["open"], bar["close"]) == (trades[0].price, trades[-1].price)
    assert bar["high"] == max(t.price for t in trades)
    assert bar["low"] == min(t.price for t in trades)
    assert bar["volume"] == sum(t.amount for t in trades)
    assert bar["trade_count"] == len(trades)
    assert bar["buy_volume"] == sum(t.amount for t in trades if t.direction == "buy")
    assert bar["vwap"] == pytest.approx(sum(t.price * t.amount for t in trades) / bar["volume"], rel=1e-12)


def test_instruments_gaps_coverage(loaded: Api, questdb_clean: QuestDBHandle) -> None:
    exp = data.us(dt.date(2026, 10, 30), 8)
    events: list[Event] = [
        InstrumentEvent(
            "ETH-30OCT26-3000-C",
            data.us(D1, 1),
            data.us(D1, 1),
            "open",
            kind="option",
            base_currency="ETH",
            option_type="call",
            strike=3000.0,
            expiration_us=exp,
            creation_us=data.us(dt.date(2026, 9, 1)),
        ),
        InstrumentEvent(
            "BTC-27NOV26-90000-C",
            data.us(D1, 1),
            data.us(D1, 1),
            "open",
            kind="option",
            base_currency="BTC",
            strike=90000.0,
            expiration_us=data.us(dt.date(2026, 11, 27), 8),
        ),
        InstrumentEvent("ETH-30OCT26-3000-C", data.us(D2, 1), data.us(D2, 1), "halted"),
        Gap(GapKind.DISCONNECT, "*", data.us(D2, 10), data.us(D2, 10, 1), "socket closed", "c1", GapStatus.RESOLVED),
        Gap(
            GapKind.TRADE_SEQ,
            "ETH-30OCT26-3000-P",
            data.us(D2, 12),
            data.us(D2, 12, 0, 30.0),
            "seq 5 -> 7",
            "c1",
            GapStatus.BACKFILLED,
        ),
    ]
    data.write(questdb_clean, events)
    rows = loaded.get("/instruments", currency="ETH", at=iso(data.us(D1, 12)))["rows"]
    assert [(r["instrument"], r["state"], r["strike"]) for r in rows] == [("ETH-30OCT26-3000-C", "open", 3000.0)]
    assert rows[0]["expiration"] == "2026-10-30T08:00:00.000000Z"
    assert loaded.get("/instruments", at=iso(data.us(D1, 12)), expiry="2026-11-27")["count"] == 1
    both = loaded.get("/instruments", at=iso(data.us(D1, 12)))["rows"]
    assert len(both) == 2
    one = loaded.get("/instruments", at=iso(data.us(D1, 12)), limit=1)
    assert one["rows"] == both[:1]  # limit is honoured (#16), and a cursor leads to the rest
    assert loaded.get("/instruments", at=iso(data.us(D1, 12)), limit=1, cursor=one["next_cursor"])["rows"] == both[1:]
    assert loaded.get("/instruments", at=iso(data.us(D2, 12)), active="true")["count"] == 1  # ETH one halted
    later = loaded.get("/instruments", currency="ETH", at=iso(data.us(D2, 12)))["rows"]
    assert [r["state"] for r in later] == ["halted"]

    gaps = loaded.get("/gaps", start=D2.isoformat(), end=D3.isoformat())["rows"]
    assert [(g["kind"], g["instrument"], g["status"]) for g in gaps] == [
        ("disconnect", "*", "resolved"),
        ("trade_seq", "ETH-30OCT26-3000-P", "backfilled"),
    ]
    assert loaded.get("/gaps", start=D2.isoformat(), end=D3.isoformat(), kind="trade_seq")["count"] == 1
    assert loaded.get("/gaps", start=D3.isoformat(), end="2026-10-08")["count"] == 0

    cov = loaded.get("/coverage", start_day=D2.isoformat(), end_day=D2.isoformat(), table="trades")["rows"]
    assert [(c["instrument"], c["rows"]) for c in cov] == [(i, 12) for i in sorted(data.INSTRUMENTS)]
    put = next(c for c in cov if c["instrument"] == "ETH-30OCT26-3000-P")
    assert (put["trade_seq_min"], put["trade_seq_max"], put["trade_seq_missing"]) == (113, 124, 0)
    # its trade_seq gap was backfilled, and c1 does not carry the trades channels (c0 does)
    assert {c["gap_seconds"] for c in cov} == {0.0}
    quotes = loaded.get("/coverage", start_day=D2.isoformat(), end_day=D2.isoformat(), table="quotes")["rows"]
    # the c1 disconnect took 60 s of quotes from exactly the instruments c1 carries
    want = {i: 60.0 if shard_of(i, 4) == 1 else 0.0 for i in data.INSTRUMENTS}
    assert {c["instrument"]: c["gap_seconds"] for c in quotes} == want
    assert 60.0 in want.values()
    assert 0.0 in want.values()


def test_coverage_charges_a_gap_only_where_it_took_data(loaded: Api, questdb_clean: QuestDBHandle) -> None:
    """#16: a connection-wide gap is charged only to the instruments of its connection, a
    backfilled gap costs no trades, overlapping gaps count once, and a book sequence gap
    costs only book changes."""
    put, call = "ETH-30OCT26-3000-P", "ETH-30OCT26-3000-C"
    c_put = f"c{shard_of(put, 4)}"
    data.write(questdb_clean, data.book(for_instrument=put))
    data.write(
        questdb_clean,
        [
            # c0 carries the trades channel: its 235 s disconnect was fully backfilled
            Gap(GapKind.DISCONNECT, "*", data.us(D2, 10), data.us(D2, 10, 3, 55.0), "x", "c0", GapStatus.BACKFILLED),
            # two overlapping gaps of the put's own connection: 100 s in all, not 120
            Gap(GapKind.DISCONNECT, "*", data.us(D2, 11), data.us(D2, 11, 1), "x", c_put, GapStatus.RESOLVED),
            Gap(GapKind.STALE, put, data.us(D2, 11, 0, 40.0), data.us(D2, 11, 1, 40.0), "x", c_put, GapStatus.RESOLVED),
            Gap(GapKind.BOOK_SEQ, call, data.us(D2, 12), data.us(D2, 12, 0, 5.0), "x", "c0", GapStatus.RESOLVED),
        ],
    )

    def seconds(table: str) -> dict[str, float]:
        rows = loaded.get("/coverage", start_day=D2.isoformat(), end_day=D2.isoformat(), table=table)["rows"]
        return {r["instrument"]: r["gap_seconds"] for r in rows}

    # where the venue's plan (4 connections) puts them: none of the five on c0
    assert {shard_of(i, 4) for i in data.INSTRUMENTS} == {1, 2, 3}
    assert c_put == "c3"
    assert set(seconds("trades").values()) == {0.0}  # the c0 disconnect was backfilled: no trade missing
    quotes = seconds("quotes")
    assert quotes == {i: 100.0 if i == put else 0.0 for i in data.INSTRUMENTS}, quotes
    book = seconds("book_changes")
    assert book == {put: 100.0, call: 5.0}, book  # the two instruments with book changes
