"""The products over the API, from stored ticks in every tier: values equal those computed
independently from the known inputs (tests/api/data.py: last quote as of each instant,
the book replayed to each instant), and identical whether a day is hot (QuestDB), warm
(after the real rollover) or cold (archived Parquet, warm month dropped)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import polars as pl

from tests.api import data
from tests.api.conftest import Api
from tickarchive.api.timefmt import iso
from tickarchive.archive.export import export_month
from tickarchive.archive.targets import open_target
from tickarchive.domain import Gap, GapKind, GapStatus
from tickarchive.months import Month
from tickarchive.store.hot import HotReader, HotStore
from tickarchive.store.rollover import RolloverOptions, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import BOOK_CHANGES, GAPS, QUOTES, TRADES

D1, D2, D3 = data.DAYS
S = 1_000_000
START, END = iso(data.us(D1, 6)), iso(data.us(D3, 6))
GAP = Gap(
    instrument="*", start_us=data.us(D1, 9), end_us=data.us(D1, 9, 30), kind=GapKind.DISCONNECT,
    cause="test", connection="c0", status=GapStatus.RESOLVED,
)


def products(api: Api) -> dict[str, Any]:
    common = {"currency": "ETH", "start": START, "end": END, "time_format": "epoch_us"}
    return {
        "chain": api.get("/chain/snapshots", interval="1h", max_age_s=6 * 3600, **common)["rows"],
        "recv": api.get("/chain/snapshots", interval="2h", max_age_s=3600, basis="receive", **common)["rows"],
        "surface": api.get("/surface", interval="3h", max_age_s=86_400, **common)["rows"],
        "points": api.get("/surface", interval="6h", max_age_s=86_400, level="points", **common)["rows"],
        "book": api.get("/book/snapshots", instrument=data.BOOK_INSTRUMENT, start=START, end=END, interval="10m",
                        depth=3, time_format="epoch_us")["rows"],
        "tardis": api.client.get("/options_chain", params={"currency": "ETH", "start": iso(data.us(D1, 6)),
                                                            "end": iso(data.us(D1, 18))}).text,
    }


def test_products_equal_independent_values_in_every_tier(
    api: Api, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path
) -> None:
    quotes = data.quotes()
    data.write(questdb_clean, [*data.all_events(), GAP])
    hot = products(api)

    # chain snapshots: the last quote as of each instant, never a later one
    by_at: dict[int, dict[str, dict[str, Any]]] = {}
    for r in hot["chain"]:
        by_at.setdefault(r["at"], {})[r["instrument"]] = r
    instants = range(data.us(D1, 6), data.us(D3, 6), 3600 * S)
    assert sorted(by_at) == list(instants)
    for at in instants:
        want = data.expected_chain(quotes, "ETH", at, 6 * 3600 * S)
        got = by_at[at]
        assert sorted(got) == sorted(want), at
        for name, q in want.items():
            r = got[name]
            assert (r["ts"], r["recv_ts"], r["bid_price"], r["mark_iv"], r["delta"]) == (
                q.ts_us, q.recv_ts_us, q.bid_price, q.mark_iv, q.delta)
            assert r["staleness_s"] * S == at - q.ts_us or abs(r["staleness_s"] * S - (at - q.ts_us)) < 1
            assert r["in_gap"] == (q.ts_us < GAP.end_us and at >= GAP.start_us)
    # receive basis: recv_ts <= at decides
    for r in hot["recv"]:
        assert r["recv_ts"] <= r["at"]
        later = [q for q in quotes if q.instrument == r["instrument"] and r["recv_ts"] < q.recv_ts_us <= r["at"]]
        assert not later
    # book snapshots every 10 minutes = the changes applied to the snapshot up to each instant
    for r in hot["book"]:
        bids, asks = data.expected_book(data.book(), r["at"])
        assert [r["bid_0_price"], r["bid_0_amount"]] == (bids[0] if bids else [None, None])
        assert [r["ask_1_price"], r["ask_1_amount"]] == (asks[1] if len(asks) > 1 else [None, None])
        assert r["sequence_ok"]
    assert len(hot["book"]) == len(range(data.us(D1, 6), data.us(D3, 6), 600 * S))
    # the Tardis CSV: one row per quote of the window, by receive time
    rows = list(csv.DictReader(io.StringIO(hot["tardis"])))
    want_rows = [q for q in quotes if q.instrument.startswith("ETH-") and data.us(D1, 6) <= q.ts_us < data.us(D1, 18)]
    assert len(rows) == len(want_rows) > 0
    assert [int(r["local_timestamp"]) for r in rows] == sorted(q.recv_ts_us for q in want_rows)

    # day 1 to the warm store (the real rollover), its QuestDB partition dropped
    with (
        HotStore(questdb_clean.pg_dsn, questdb_clean.http_url) as h,
        WarmStore(postgres_clean.owner_dsn, postgres_clean.dialect) as w,
    ):
        report = run(h, w, data.us(dt.date(2026, 10, 8), 1), RolloverOptions(hot_retention_days=1,
                                                                              reader=HotReader.PG), day=D1)
        assert report.ok, report.problems
    questdb_clean.wait_for_wal()
    assert [s.tier.value for s in api.stores.segments(QUOTES, data.us(D1), data.us(D3))] == ["warm", "hot"]
    assert products(api) == hot

    # day 1 archived, its warm month dropped: read from Parquet
    target = open_target(str(tmp_path / "lake"))
    with WarmStore.open(postgres_clean.owner_dsn) as source:
        for t in (QUOTES, TRADES, BOOK_CHANGES, GAPS):
            export_month(source, target, t, Month(2026, 10))
    for t in (QUOTES, TRADES, BOOK_CHANGES, GAPS):
        postgres_clean.query(f"DELETE FROM {t.name} WHERE ts < '2026-11-01'")
    api.stores.cold.forget()
    assert [s.tier.value for s in api.stores.segments(QUOTES, data.us(D1), data.us(D3))] == ["cold", "hot"]
    assert products(api) == hot


def test_condition_per_day(api: Api, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle) -> None:
    data.write(questdb_clean, [*data.all_events(), GAP])
    pending = api.get("/condition", start="2026-10-05", end="2026-10-08", table="quotes")["rows"]
    assert [(r["day"], r["condition"]) for r in pending] == [
        ("2026-10-05", "pending"), ("2026-10-06", "pending"), ("2026-10-07", "pending")]
    assert pending[0]["rows"] == 5 * 30
    assert pending[0]["gap_seconds"] == 1800
    with (
        HotStore(questdb_clean.pg_dsn, questdb_clean.http_url) as h,
        WarmStore(postgres_clean.owner_dsn, postgres_clean.dialect) as w,
    ):
        for d in (D1, D2):
            report = run(h, w, data.us(dt.date(2026, 10, 8), 1), RolloverOptions(hot_retention_days=30,
                                                                                  reader=HotReader.PG), day=d)
            assert report.ok, report.problems
    body = api.get("/condition", start="2026-10-05", end="2026-10-09")
    got = {(r["day"], r["table_name"]): r for r in body["rows"]}
    assert got[("2026-10-05", "quotes")]["condition"] == "degraded"
    q1 = got[("2026-10-05", "quotes")]
    assert (q1["gap_seconds"], q1["affected_share"], q1["gaps"], q1["instruments"]) == (1800.0, 1.0, 1, 5)
    assert got[("2026-10-05", "trades")]["condition"] == "degraded"  # a disconnect loses trades too
    assert got[("2026-10-06", "quotes")]["condition"] == "available"
    assert got[("2026-10-06", "book_changes")]["condition"] == "available"
    assert got[("2026-10-07", "quotes")]["condition"] == "pending"
    assert got[("2026-10-08", "quotes")]["condition"] == "pending"
    assert len(body["rows"]) == 4 * 3
    csv_text = api.client.get("/condition", params={"start": "2026-10-05", "end": "2026-10-06", "format": "csv"}).text
    assert pl.read_csv(io.StringIO(csv_text)).height == 3


def test_bad_requests_are_422(api: Api) -> None:
    for path, params in (
        ("/chain/snapshots", {"currency": "ETH", "start": START, "end": END, "interval": "7q"}),
        ("/chain/snapshots", {"currency": "ETH", "start": START}),
        ("/chain/snapshots", {"currency": "ETH", "at": START, "start": START}),
        ("/chain/snapshots", {"currency": "ETH", "at": START, "columns": "nope"}),
        ("/surface", {"currency": "ETH", "at": START, "level": "wings"}),
        ("/book/snapshots", {"instrument": "ETH-*", "start": START, "end": END}),
        ("/book/snapshots", {"instrument": data.BOOK_INSTRUMENT, "start": START, "end": END, "depth": 0}),
        ("/condition", {"start": "2026-10-05", "end": "2026-10-06", "table": "index_ticks"}),
    ):
        r = api.client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"] == "invalid_request"
    month = {"currency": "ETH", "start": "2026-10-01", "end": "2026-11-01", "interval": "1s"}  # 2.7M instants
    big = api.client.get("/chain/snapshots", params=month)
    assert big.status_code == 413
    assert big.json()["error"] == "result_too_large"
