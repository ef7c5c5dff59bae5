"""The products end to end on simulated data: simulator → collector → QuestDB → API, then
the same products from the warm store (after the real rollover) and from the Parquet
archive (warm month dropped): identical in every tier.

Every value is checked against values computed independently of the archive: which
quote is the last one as of each instant comes from the simulator's send log (what it
sent, with the exchange timestamp), the quote's fields and the book's levels from the
frames decoded with orjson (the journal holds exactly the frames received); the surface
is recomputed with numpy from that expected chain. A ``skip_book`` fault breaks one
book's change-id chain: the collector records a ``book_seq`` gap until the
resubscription's snapshot, the book snapshots inside it carry ``in_gap``, and they still
equal the replay of what was sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.api.conftest import Api, make_settings
from tests.ingest.test_collector import (
    collector_settings,
    journal_tickers,
    quiesce,
    running,
    sim_config,
    stored_gaps,
    stored_quotes,
    wait_for,
)
from tickarchive.api.timefmt import iso
from tickarchive.archive.export import export_month
from tickarchive.archive.targets import open_target
from tickarchive.ingest.journal import JournalReader
from tickarchive.loadtest.sim import Simulator
from tickarchive.months import Month
from tickarchive.products.instruments import EXPIRY_HOUR_UTC
from tickarchive.store.hot import HotReader, HotStore
from tickarchive.store.rollover import RolloverOptions, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import BOOK_CHANGES, GAPS, QUOTES

S = 1_000_000
MAX_AGE_S = 30
_MONTHS = {m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                            "NOV", "DEC"))}


def expiry_us(name: str) -> int:
    d = name.split("-")[1]
    day, mon, yy = int(d[:-5]), _MONTHS[d[-5:-2]], int(d[-2:])
    t = dt.datetime(2000 + yy, mon, day, EXPIRY_HOUR_UTC, tzinfo=dt.UTC)
    return int(t.timestamp()) * S


def expected_chain(sent: dict[str, list[int]], at: int) -> dict[str, int]:
    """instrument -> ts of its last quote sent at or before ``at`` (within MAX_AGE_S, live)."""
    out = {}
    for inst, times in sent.items():
        before = [t for t in times if t <= at]
        if before and at - max(before) <= MAX_AGE_S * S and expiry_us(inst) > at:
            out[inst] = max(before)
    return out


def journal_books(journal_dir: Path, instrument: str) -> list[dict[str, Any]]:
    out = []
    for rec in JournalReader(journal_dir).read_from(0):
        if f'"book.{instrument}.'.encode() not in rec.frame[:160]:
            continue
        msg = orjson.loads(rec.frame)
        if msg.get("method") == "subscription" and msg["params"]["channel"].startswith(f"book.{instrument}."):
            out.append(msg["params"]["data"])
    return out


def replay_book(frames: list[dict[str, Any]], sent: set[tuple[int, int]], at: int, depth: int) -> dict[str, Any] | None:
    """The book after every sent message stamped at or before ``at``."""
    msgs = sorted(
        (f for f in frames if f["timestamp"] * 1000 <= at and (f["change_id"], f["timestamp"] * 1000) in sent),
        key=lambda f: (f["timestamp"], f["change_id"], f["type"] != "snapshot"),
    )
    book: dict[str, dict[float, float]] = {"bids": {}, "asks": {}}
    snap_id = last = None
    ok = True
    ts = None
    for f in msgs:
        if f["type"] == "snapshot":
            if f["change_id"] != snap_id:
                book = {"bids": {}, "asks": {}}
            snap_id = last = f["change_id"]
            ok = True
            for side in ("bids", "asks"):
                for _a, px, amt in f[side]:
                    book[side][px] = amt
        elif snap_id is not None and f["change_id"] > snap_id:
            if f["prev_change_id"] != last:
                ok = False
            last = f["change_id"]
            for side in ("bids", "asks"):
                for action, px, amt in f[side]:
                    if action == "delete" or amt == 0:
                        book[side].pop(px, None)
                    else:
                        book[side][px] = amt
        else:
            continue
        ts = f["timestamp"] * 1000
    if snap_id is None:
        return None
    bids = sorted(book["bids"].items(), reverse=True)[:depth]
    asks = sorted(book["asks"].items())[:depth]
    return {"bids": bids, "asks": asks, "ok": ok, "ts": ts}


def surface_of(chain: dict[str, dict[str, Any]]) -> dict[int, dict[str, float | None]]:
    """Per expiry: forward, ATM IV and 25-delta wings, with numpy.interp (no extrapolation)."""
    by_exp: dict[int, list[dict[str, Any]]] = {}
    for name, q in chain.items():
        by_exp.setdefault(expiry_us(name), []).append({**q, "name": name})
    out: dict[int, dict[str, float | None]] = {}
    for exp, opts in by_exp.items():
        fresh = min(opts, key=lambda o: (o["staleness"], o["name"]))
        fwd = fresh["underlying_price"]
        strikes: dict[float, dict[str, float]] = {}
        for o in opts:
            k = float(o["name"].split("-")[2])
            strikes.setdefault(k, {})[o["name"][-1]] = o["mark_iv"]
        ks, ivs = [], []
        for k in sorted(strikes):
            otm = "C" if k >= fwd else "P"
            ks.append(math.log(k / fwd))
            ivs.append(strikes[k].get(otm, strikes[k].get("P" if otm == "C" else "C")))
        atm = float(np.interp(0.0, ks, ivs)) if ks and ks[0] <= 0 <= ks[-1] else None

        def wing(cp: str, target: float, options: list[dict[str, Any]] = opts) -> float | None:
            pts = sorted((o["delta"], o["mark_iv"]) for o in options if o["name"].endswith(cp))
            xs = [p[0] for p in pts]
            if not xs or not xs[0] <= target <= xs[-1]:
                return None
            return float(np.interp(target, xs, [p[1] for p in pts]))

        out[exp] = {"forward": fwd, "atm_iv": atm, "call25_iv": wing("C", 0.25), "put25_iv": wing("P", -0.25)}
    return out


def products(api: Api, start: int, end: int, book_inst: str) -> dict[str, Any]:
    common = {"currency": "ETH", "start": iso(start), "end": iso(end), "time_format": "epoch_us"}
    return {
        "chain": api.get("/chain/snapshots", interval="1s", max_age_s=MAX_AGE_S, **common)["rows"],
        "surface": api.get("/surface", interval="1s", max_age_s=MAX_AGE_S, **common)["rows"],
        "book": api.get("/book/snapshots", instrument=book_inst, start=iso(start), end=iso(end), interval="20ms",
                        depth=5, time_format="epoch_us")["rows"],
        "tardis": api.client.get("/options_chain", params={"currency": "ETH", "start": iso(start),
                                                           "end": iso(end)}).text,
    }


def _day(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(microseconds=us)


def roll_and_archive(
    api: Api, qdb: QuestDBHandle, warm: WarmHandle, tmp_path: Path, start: int, end: int
) -> list[Any]:
    """The real rollover of the run's day(s), with time moved to 01:00 the next day (the
    collector's heartbeat at 00:05 that day, written here, is the evidence the journal was
    shipped past midnight)."""
    last = _day(end)
    nxt = last + dt.timedelta(days=1)
    qdb.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
              f"journal_backlog_bytes) VALUES ('{nxt.isoformat()}T00:05:00.000000Z', 'c0', true, 3, 1, 0)")
    qdb.wait_for_wal()
    now = int(dt.datetime(nxt.year, nxt.month, nxt.day, 1, tzinfo=dt.UTC).timestamp()) * S
    with HotStore(qdb.pg_dsn, qdb.http_url) as h, WarmStore(warm.owner_dsn, warm.dialect) as w:
        report = run(h, w, now, RolloverOptions(reader=HotReader.PG))
        assert report.ok, report.problems
    return api.stores.segments(QUOTES, start, end)


def to_cold(api: Api, warm: WarmHandle, tmp_path: Path, start: int, end: int) -> list[Any]:
    """Archive the month, drop it from the warm store (what retention does once verified)."""
    month = Month.of(_day(start))
    target = open_target(str(tmp_path / "lake"))
    with WarmStore.open(warm.owner_dsn) as source:
        for t in (QUOTES, BOOK_CHANGES, GAPS):
            export_month(source, target, t, month)
    for t in (QUOTES, BOOK_CHANGES, GAPS):
        warm.query(f"DELETE FROM {t.name} WHERE ts >= %s AND ts < %s", (
            dt.datetime.fromtimestamp(month.start_us / S, dt.UTC), dt.datetime.fromtimestamp(month.end_us / S, dt.UTC)))
    api.stores.cold.forget()
    return api.stores.segments(QUOTES, start, end)


async def test_products_from_the_simulator_equal_independent_values(
    tmp_path: Path, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    qdb = questdb_clean
    journal = tmp_path / "journal"
    async with Simulator(sim_config(tmp_path, start_ms=None, instruments=72, rate_per_s=1200.0)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, journal) as c:
            await wait_for(lambda: c.all_subscribed() and c.writer.acked_seq > 2400, 60, "2 s of frames")
            fault = sim.inject("skip_book", count=2)
            (book_inst,) = fault.instruments
            # (the deadlines only bound a failure)
            await wait_for(lambda: fault.end_us is not None, 60, "the withheld changes")
            await wait_for(lambda: any(g.kind == "book_seq" for g in c.ledger.history if g.end_us), 60, "resync")
            after = c.journal.last_seq
            await wait_for(lambda: c.journal.last_seq > after + 2400, 60, "2 s of data after the resync")
            await quiesce(sim, c)
        qdb.wait_for_wal()
        sent_rows = sim.send_log.rows("quotes")
        sent_book = {(r["change_id"], r["ts_us"]) for r in sim.send_log.rows("book_changes")
                     if r["instrument"] == book_inst}
    assert set(stored_quotes(qdb)) == {(r["instrument"], r["ts_us"]) for r in sent_rows}
    sent: dict[str, list[int]] = {}
    for r in sent_rows:
        sent.setdefault(r["instrument"], []).append(r["ts_us"])
    wire = journal_tickers(journal)
    first, last = min(r["ts_us"] for r in sent_rows), max(r["ts_us"] for r in sent_rows)
    start, end = -(-first // S) * S, (last // S + 2) * S
    # the API cuts a range at now (nothing of the future is served): let the range end pass
    # first, so every tier answers over the same instants
    await wait_for(lambda: time.time_ns() // 1000 >= end, 60, "the end of the range to pass")
    api = Api(make_settings(qdb, postgres_clean, tmp_path))
    try:
        hot = products(api, start, end, book_inst)
        chain, surface, book, tardis_csv = hot["chain"], hot["surface"], hot["book"], hot["tardis"]
        # the same products once the day is rolled over (warm) and then archived (cold)
        assert [s.tier.value for s in roll_and_archive(api, qdb, postgres_clean, tmp_path, start, end)] == ["warm"]
        assert products(api, start, end, book_inst) == hot
        assert [s.tier.value for s in to_cold(api, postgres_clean, tmp_path, start, end)] == ["cold"]
        assert products(api, start, end, book_inst) == hot
    finally:
        api.close()

    # chain: per instant exactly the options with a sent quote, and that quote's values
    instants = list(range(start, end, S))
    by_at: dict[int, dict[str, dict[str, Any]]] = {}
    for r in chain:
        by_at.setdefault(r["at"], {})[r["instrument"]] = r
    assert sorted(by_at) == instants
    expected_chains: dict[int, dict[str, dict[str, Any]]] = {}
    for at in instants:
        want = expected_chain(sent, at)
        assert sorted(by_at[at]) == sorted(want), at
        expected_chains[at] = {}
        for inst, ts in want.items():
            r, d = by_at[at][inst], wire[(inst, ts)]
            assert r["ts"] == ts <= at
            assert r["staleness_s"] == pytest.approx((at - ts) / S, abs=1e-9)
            assert r["bid_price"] == (d["best_bid_price"] or None)
            assert r["ask_price"] == (d["best_ask_price"] or None)
            assert (r["mark_iv"], r["mark_price"], r["underlying_price"]) == (
                d["mark_iv"], d["mark_price"], d["underlying_price"])
            assert (r["delta"], r["vega"], r["open_interest"]) == (
                d["greeks"]["delta"], d["greeks"]["vega"], d["open_interest"])
            assert r["in_gap"] is False  # the only gap is one book's
            expected_chains[at][inst] = {"staleness": at - ts, "underlying_price": d["underlying_price"],
                                         "mark_iv": d["mark_iv"], "delta": d["greeks"]["delta"]}

    # surface: forward, ATM and 25-delta wings equal numpy's interpolation of the same points
    assert surface
    checked = 0
    for e in surface:
        want_s = surface_of(expected_chains[e["at"]])[e["expiration"]]
        assert e["forward"] == want_s["forward"]
        for col in ("atm_iv", "call25_iv", "put25_iv"):
            if want_s[col] is None:
                assert e[col] is None, col
            else:
                assert e[col] == pytest.approx(want_s[col], rel=1e-9), col
                checked += 1
    assert checked >= 10  # (few strikes per expiry in a 72-option chain: many values have no bracket)

    # book: every 100 ms the replay of the messages sent; the skipped change ids flag it
    frames = journal_books(journal, book_inst)
    assert book
    for r in book:
        want_b = replay_book(frames, sent_book, r["at"], 5)
        assert want_b is not None
        assert [(r[f"bid_{i}_price"], r[f"bid_{i}_amount"]) for i in range(len(want_b["bids"]))] == want_b["bids"]
        assert [(r[f"ask_{i}_price"], r[f"ask_{i}_amount"]) for i in range(len(want_b["asks"]))] == want_b["asks"]
        assert r["sequence_ok"] == want_b["ok"]
        assert r["book_ts"] == want_b["ts"]
    (gap,) = stored_gaps(qdb)
    assert gap["kind"] == "book_seq"
    for r in book:
        assert r["in_gap"] == (r["at"] >= gap["start_us"] and r["book_ts"] < gap["end_us"])
        if not r["sequence_ok"]:  # (the resubscription's snapshot often heals the chain at the same ts)
            assert r["in_gap"]
    if any(gap["start_us"] <= r["at"] < gap["end_us"] for r in book):
        assert any(r["in_gap"] for r in book)

    # the Tardis CSV: every quote sent in the range, by receive time
    rows = list(csv.DictReader(io.StringIO(tardis_csv)))
    assert len(rows) == sum(1 for r in sent_rows if start <= r["ts_us"] < end)
    stamps = [int(r["local_timestamp"]) for r in rows]
    assert stamps == sorted(stamps)
